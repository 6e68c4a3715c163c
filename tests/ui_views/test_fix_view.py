"""Fix view: the real flow against the simulator with its Manager, and a scripted event feed."""

from __future__ import annotations

import json

import pytest

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.config import Settings
from pistachio_tui.fix.flow import FixEvent, FixOptions, FixOutcome
from pistachio_tui.sim.server import SimServer
from pistachio_tui.ui.fix.view import ChooseModel, FixView
from pistachio_tui.workflow.load import load_workflow
from tests.fix.file_server import FileServer, fake_model
from tests.fix.workflows import MODELS, fix_workflow
from tests.ui_views.harness import ViewApp, screen_text, until


@pytest.fixture
async def files():
    server = FileServer(files={name: fake_model(50_000) for name, _ in MODELS})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def fix_sim(tmp_path):
    sim = SimServer(step_delay=0.001, manager=True, models_dir=tmp_path / "models", reboot_downtime=0.05)
    await sim.start()
    yield sim
    await sim.stop()


def sim_fix_app(tmp_path, client, files) -> ViewApp:
    workflow = load_workflow(json.dumps(fix_workflow(files.url)).encode(), "fix.json")
    options = FixOptions(comfy_dir=tmp_path, poll_interval=0.02, hf_search=False, state_dir=tmp_path / "state")
    return ViewApp(lambda: FixView(Settings(), client, workflow, options=options))


async def answer_choices(pilot, view: FixView, stop_after: int | None = None) -> int:
    """Pick the first source in every model dialog until the run ends (or ``stop_after`` picks)."""
    app, chosen = pilot.app, 0
    while view.outcome is None and chosen != stop_after:
        await until(pilot, lambda: isinstance(app.screen, ChooseModel) or view.outcome is not None,
                    "a model choice or the end")
        if isinstance(app.screen, ChooseModel):
            await pilot.press("enter")
            chosen += 1
            await pilot.pause()
    return chosen


async def test_two_packs_three_models_to_accepted_on_the_simulator(tmp_path, files, fix_sim):
    async with ComfyClient(fix_sim.url) as client:
        app = sim_fix_app(tmp_path, client, files)
        async with app.run_test(size=(120, 40)) as pilot:
            view = app.query_one(FixView)
            await pilot.press("s")
            assert await answer_choices(pilot, view) == 3 and view.outcome.accepted
            assert view.steps == {"Nodes": "ok", "Restart": "ok", "Models": "ok", "Verify": "ok"}
            states = {key: row.state for key, row in view.rows.items()}
            assert states["pack:UltimateSDUpscale"] == "ok" and states["pack:ComfyUI-VideoHelperSuite"] == "ok"
            assert states["model:fixflow_vae.safetensors"] == "ok"
            assert "accepted the workflow" in screen_text(app)
    for name, folder in MODELS:
        assert (tmp_path / "models" / folder / name).stat().st_size == 50_000


async def test_cancel_then_resume_finishes_the_rest(tmp_path, files, fix_sim):
    async with ComfyClient(fix_sim.url) as client:
        app = sim_fix_app(tmp_path, client, files)
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.query_one(FixView)
            await pilot.press("s")
            assert await answer_choices(pilot, view, stop_after=1) == 1
            await until(pilot, lambda: isinstance(app.screen, ChooseModel), "the second model choice")
            await pilot.press("x")
            await until(pilot, lambda: not view.running, "the cancel")
            assert not isinstance(app.screen, ChooseModel) and view.outcome is None
            await pilot.press("s")
            assert await answer_choices(pilot, view) == 2
            assert view.outcome.accepted


def scripted(events: list[FixEvent], outcome: FixOutcome):
    """A flow class that plays ``events`` and returns ``outcome``, like ``FixFlow`` would."""
    class ScriptedFlow:
        def __init__(self, client, workflow, options, *, emit, chooser):
            self.emit = emit

        async def run(self):
            for event in events:
                self.emit(event)
            return outcome
    return ScriptedFlow


PROBLEMS = ["missing node: UltimateSDUpscale", "missing node: NoPackHasThis",
            "missing model: checkpoints/sdxl_base.safetensors"]
EVENTS = [
    FixEvent("diagnose", None, "start", "Checking what the workflow needs"),
    FixEvent("diagnose", None, "failed", "3 problem(s)", {"problems": PROBLEMS}),
    FixEvent("nodes", None, "start", "2 missing node type(s)"),
    FixEvent("nodes", "UltimateSDUpscale", "ok", "UltimateSDUpscale → UltimateSDUpscale <https://github.com/ssitu/x>"),
    FixEvent("nodes", "NoPackHasThis", "failed", "No known node pack provides NoPackHasThis"),
    FixEvent("install", "UltimateSDUpscale", "ok", "installed"),
    FixEvent("restart", None, "start", "Restarting ComfyUI to load the new nodes"),
    FixEvent("restart", None, "waiting", "waiting for the server… 12 s", {"elapsed": 12.0}),
    FixEvent("restart", None, "ok", "Server is back after 14 s"),
    FixEvent("models", None, "start", "1 missing model(s)"),
    FixEvent("download", "sdxl_base.safetensors", "start", "https://example.org/sdxl → models/checkpoints/"),
    FixEvent("download", "sdxl_base.safetensors", "progress", "3.0 / 6.0 MB", {"done": 3, "total": 6}),
]
FAILED = FixOutcome(False, None, None, commands=["git clone https://example.org/nopack custom_nodes/nopack"],
                    remaining=["Install NoPackHasThis by hand"])


def scripted_app(events=EVENTS, outcome=FAILED) -> ViewApp:
    workflow = load_workflow(json.dumps({"1": {"class_type": "SaveImage", "inputs": {}}}).encode(), "portrait.json")
    client = ComfyClient("http://127.0.0.1:8188")
    return ViewApp(lambda: FixView(Settings(), client, workflow, flow_class=scripted(events, outcome),
                                   options=FixOptions()))


async def test_scripted_feed_draws_steps_rows_progress_and_manual_commands():
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(FixView)
        await pilot.press("s")
        await until(pilot, lambda: view.outcome is not None, "the scripted run")
        assert view.steps == {"Nodes": "failed", "Restart": "ok", "Models": "failed", "Verify": "pending"}
        assert view.rows["node:NoPackHasThis"].state == "failed"
        assert view.rows["model:sdxl_base.safetensors"].detail == "3.0 / 6.0 MB"
        assert "1 thing(s) to do by hand" in str(view.status.render())
        await pilot.press("c")
        assert app.clipboard_text == FAILED.commands[0]


async def test_the_tui_fix_uses_the_hugging_face_token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_fromtheenvironment")
    seen = []

    class Recording:
        def __init__(self, client, workflow, options, *, emit, chooser):
            seen.append(options.hf_token)

        async def run(self):
            return FAILED

    workflow = load_workflow(json.dumps({"1": {"class_type": "SaveImage", "inputs": {}}}).encode(), "w.json")
    app = ViewApp(lambda: FixView(Settings(), ComfyClient("http://127.0.0.1:8188"), workflow,
                                  flow_class=Recording))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await until(pilot, lambda: app.query_one(FixView).outcome is not None, "the run")
    assert seen == ["hf_fromtheenvironment"]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_fix_snapshot(snap_compare, size):
    async def played(pilot):
        view = pilot.app.query_one(FixView)
        await pilot.press("s")
        await until(pilot, lambda: view.outcome is not None, "the scripted run")

    assert snap_compare(scripted_app(), terminal_size=size, run_before=played)


async def test_model_already_on_the_server_is_used_and_the_copy_named(tmp_path):
    from tests.fix.workflows import CHECKPOINT_ONLY_NODES

    sim = SimServer(step_delay=0.001, models={"checkpoints": ["fixflow_ckpt.safetensors"]})
    await sim.start()
    nodes = [(1, "CheckpointLoaderSimple", ["SDXL\\fixflow_ckpt.safetensors"], {}, ["MODEL", "CLIP", "VAE"]),
             *CHECKPOINT_ONLY_NODES[1:]]
    path = tmp_path / "downloaded.json"
    path.write_text(json.dumps(fix_workflow("http://127.0.0.1:9", nodes, [])))
    options = FixOptions(poll_interval=0.02, hf_search=False, state_dir=tmp_path / "state")
    try:
        async with ComfyClient(sim.url) as client:
            app = ViewApp(lambda: FixView(Settings(), client, load_workflow(path), options=options))
            async with app.run_test(size=(160, 40)) as pilot:
                view = app.query_one(FixView)
                await pilot.press("s")
                await until(pilot, lambda: view.outcome is not None, "the end of the run")
                assert view.outcome.accepted
                assert view.rows["model:SDXL\\fixflow_ckpt.safetensors"].state == "ok"
                assert "downloaded.fixed.json" in screen_text(app)
    finally:
        await sim.stop()
    assert (tmp_path / "downloaded.fixed.json").is_file()
