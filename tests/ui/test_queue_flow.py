"""Open a workflow, queue it, watch it finish, see history; interrupt a long run."""

from __future__ import annotations

from textual.widgets import DataTable, Input, ProgressBar

from pistachio_tui.comfy.session import CONNECTED, UpdateKind
from pistachio_tui.sim.server import SimServer
from pistachio_tui.ui.widgets.output_preview import OutputPreview
from pistachio_tui.ui.workflows.screen import WorkflowsScreen
from pistachio_tui.ui.workflows.sources import bundled_dir

from .helpers import make_app, until


def sim_workflow(tmp_path):
    from pistachio_tui.sim.catalog import seed_workflows

    path = tmp_path / "sim_txt2img.json"
    path.write_bytes(seed_workflows()["sim_txt2img.json"])
    return path


async def open_by_path(pilot, path) -> WorkflowsScreen:
    await pilot.press("2", "o")
    screen = pilot.app.screen
    screen.query_one("#open-path", Input).value = str(path)
    await pilot.press("enter")
    await until(pilot, lambda: screen.preview is not None)
    return screen


async def test_queue_a_workflow_and_see_it_in_history(sim, tmp_path):
    app = make_app(tmp_path, ("sim", sim.url))
    seen_progress = []
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        session = app.manager.active
        session.subscribe(lambda u: seen_progress.append(u.prompt.fraction) if u.kind == UpdateKind.PROGRESS else None)
        screen = await open_by_path(pilot, sim_workflow(tmp_path))
        summary = str(screen.query_one("#wf-summary").render())
        assert "nodes to run" in summary and "All node types available" in summary
        screen.query_one("#batch", Input).value = "2"
        await pilot.press("g")
        await until(pilot, lambda: sum(e.outcome == "success" for e in session.history.values()) == 2)
        assert max(seen_progress) == 1.0
        await pilot.press("3")
        history = app.screen.query_one("#history", DataTable)
        await until(pilot, lambda: history.row_count == 2)
        history.focus()
        await pilot.press("v")
        await until(pilot, lambda: "PNG" in str(app.screen.query_one(OutputPreview).query_one(".caption").render()))
        await pilot.press("s")
        app.screen.query_one(Input).value = str(tmp_path / "saved.png")
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / "saved.png").exists())
        assert (tmp_path / "saved.png").read_bytes().startswith(b"\x89PNG")


async def test_rejected_prompt_is_explained(sim, tmp_path):
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        screen = await open_by_path(pilot, bundled_dir() / "sdxl_lora.json")
        assert "missing" in str(screen.query_one("#wf-summary").render())
        await pilot.press("g")
        await until(pilot, lambda: "refused" in str(screen.query_one("#wf-summary").render()))
        assert "sd_xl_base_1.0.safetensors" in str(screen.query_one("#wf-summary").render())


async def test_interrupt_a_long_run(tmp_path):
    slow = SimServer(step_delay=0.2)
    await slow.start()
    try:
        app = make_app(tmp_path, ("slow", slow.url))
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.manager.active.state == CONNECTED)
            await open_by_path(pilot, sim_workflow(tmp_path))
            await pilot.press("g", "3")
            session = app.manager.active
            await until(pilot, lambda: session.running() is not None and session.running().value > 0)
            bar = app.screen.query_one("#overall", ProgressBar)
            await until(pilot, lambda: (bar.progress or 0) > 0)
            await pilot.press("i")
            await until(pilot, lambda: any(e.outcome == "interrupted" for e in session.history.values()))
    finally:
        await slow.stop()


async def test_fix_opens_for_the_open_workflow(sim, tmp_path):
    from pistachio_tui.ui.fix.view import FixView

    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        await open_by_path(pilot, bundled_dir() / "sdxl_lora.json")
        await pilot.press("f")
        await until(pilot, lambda: app.current_mode == "fix" and bool(app.screen.query(FixView)))
        assert app.focused is not None and app.screen.query_one(FixView) in app.focused.ancestors


async def test_node_failure_is_shown_with_title_and_traceback(sim, tmp_path):
    from textual.widgets import Collapsible

    sim.fail_class("VAEDecode", "out of memory while decoding")
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        await open_by_path(pilot, sim_workflow(tmp_path))
        await pilot.press("g")
        session = app.manager.active
        await until(pilot, lambda: any(e.outcome == "error" for e in session.history.values()))
        await until(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        await pilot.press("3")
        history = app.screen.query_one("#history", DataTable)
        await until(pilot, lambda: history.row_count == 1)
        history.focus()
        history.move_cursor(row=0)
        await pilot.pause(0.2)
        detail = str(app.screen.query_one("#detail-text").render())
        assert "VAEDecode" in detail and "out of memory while decoding" in detail
        assert app.screen.query_one("#traceback-box", Collapsible).display


async def test_pending_delete_and_move_to_front(tmp_path):
    # Slow enough that no pending prompt starts while the test works on the list, even on a busy machine.
    slow = SimServer(step_delay=0.5)
    await slow.start()
    try:
        app = make_app(tmp_path, ("slow", slow.url))
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.manager.active.state == CONNECTED)
            screen = await open_by_path(pilot, sim_workflow(tmp_path))
            screen.query_one("#batch", Input).value = "4"
            await pilot.press("g", "3")
            session = app.manager.active
            pending = app.screen.query_one("#pending", DataTable)
            await until(pilot, lambda: pending.row_count == 3)
            pending.focus()
            doomed = session.queue.pending[0].prompt_id
            await pilot.press("x")
            await until(pilot, lambda: doomed not in {i.prompt_id for i in session.queue.pending})
            await until(pilot, lambda: pending.row_count >= 1)
            pending.move_cursor(row=pending.row_count - 1)
            chosen = app.screen._row_key(pending)
            await pilot.pause(0.5)  # the queue is polled every 0.1 s here: the table refills meanwhile
            assert app.screen._row_key(pending) == chosen, "the cursor stays on the chosen prompt"
            last = next(item for item in session.queue.pending if item.prompt_id == chosen)
            await pilot.press("t")
            await until(pilot, lambda: session.queue.pending and session.queue.pending[0].prompt == last.prompt
                        and session.queue.pending[0].prompt_id != last.prompt_id)
            await pilot.press("i")
    finally:
        await slow.stop()


async def test_vram_history_and_another_clients_prompt(tmp_path):
    from pistachio_tui.cli.demo_commands import demo_prompt
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.ui.gpu.graph import FixedSparkline

    slow = SimServer(step_delay=0.2)
    await slow.start()
    try:
        app = make_app(tmp_path, ("slow", slow.url))
        async with app.run_test(size=(100, 30)) as pilot, ComfyClient(slow.url, client_id="browser") as browser:
            await until(pilot, lambda: app.manager.active.state == CONNECTED)
            await pilot.press("3")
            session = app.manager.active
            history = app.screen.query_one(FixedSparkline)
            await until(pilot, lambda: len(history.values) >= 2)
            assert history.top == 1.0, "an absolute 0-100% scale, not the samples' own range"
            label = str(app.screen.query_one("#vram-label").render())
            assert label.startswith("RAM ") and label.endswith("% of 23.5G"), "the recorded server runs on CPU"
            await browser.submit(demo_prompt(await browser.object_info()))
            await until(pilot, lambda: session.running() is not None)
            await until(pilot, lambda: "Queued by another client" in str(app.screen.query_one("#node-line").render()))
            await browser.interrupt()
    finally:
        await slow.stop()
