"""Batch screen (8): load a batch file or a sweep of the open workflow, run it over two simulators by keyboard."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from pistachio_tui.ui.batch.screen import BatchScreen
from pistachio_tui.ui.workflows.screen import WorkflowsScreen
from tests.fleet.test_batch_cli import SIM_WORKFLOW

from .helpers import DEAD_URL, make_app, until


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    # Paths are typed relative to the test's folder: a key press per character is slow.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PISTACHIO_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def hint(app) -> str:
    return str(app.screen.query_one("#batch-hint").render())


async def load_by_keyboard(pilot, name: str) -> None:
    await pilot.press("8", "o", *name, "enter")


async def test_batch_file_runs_to_completion_over_two_servers(two_sims, tmp_path):
    shutil.copy(SIM_WORKFLOW, tmp_path / "wf.json")
    batch = tmp_path / "sweep.toml"
    batch.write_text('workflow = "wf.json"\ncount = 6\nseed_mode = "increment"\nstart_seed = 100\noutput = "out"\n')
    app = make_app(tmp_path, ("left", two_sims[0].url), ("right", two_sims[1].url))
    async with app.run_test(size=(80, 24)) as pilot:
        await load_by_keyboard(pilot, "sweep.toml")
        screen = app.screen
        assert isinstance(screen, BatchScreen)
        view = screen.view
        await until(pilot, lambda: len(view.jobs) == 6)
        assert "Loaded sweep.toml: 6 jobs, 2 target(s)" in hint(app)
        await pilot.press("s")
        await until(pilot, lambda: view.result is not None)
        assert view.result.ok and view.counts()["done"] == 6
        assert view.targets["left"].done and view.targets["right"].done
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(job["params"]["seed"] for job in manifest["jobs"]) == list(range(100, 106))
    assert all((tmp_path / "out" / name).stat().st_size for job in manifest["jobs"] for name in job["files"])
    assert (tmp_path / "out" / "contact_sheet.png").exists()


async def test_bad_batch_file_says_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('workflow = "wf.json"\ncount = = 3\n')
    app = make_app(tmp_path, ("studio", DEAD_URL))
    async with app.run_test(size=(80, 24)) as pilot:
        await load_by_keyboard(pilot, "bad.toml")
        await until(pilot, lambda: "TOML" in hint(app))
        assert "bad.toml is not valid TOML" in hint(app) and "line 2" in hint(app)
        assert any("not valid TOML" in n.message for n in app._notifications)
        await pilot.press("o", *"missing.toml", "enter")
        await until(pilot, lambda: "cannot read" in hint(app))
        assert app.screen.view.jobs == {}


async def test_no_reachable_server_and_no_open_workflow(tmp_path):
    shutil.copy(SIM_WORKFLOW, tmp_path / "wf.json")
    (tmp_path / "b.toml").write_text('workflow = "wf.json"\n')
    app = make_app(tmp_path, ("studio", DEAD_URL))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("8", "w", "enter")
        await until(pilot, lambda: "No workflow is open" in hint(app))
        await pilot.press("o", *"b.toml", "enter")
        await until(pilot, lambda: "no server answers" in hint(app))
        assert "studio: Cannot reach" in hint(app) and "add a server on Servers" in hint(app)


async def test_sweep_of_the_open_workflow(two_sims, tmp_path, data_dir):
    app = make_app(tmp_path, ("left", two_sims[0].url), ("right", two_sims[1].url))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.manager.active.state != "connecting")
        await pilot.press("2")
        workflows = app.screen
        assert isinstance(workflows, WorkflowsScreen)
        workflows.open_workflow(SIM_WORKFLOW)
        await until(pilot, lambda: workflows.preview is not None and workflows.preview.prompt is not None)
        await pilot.press("8")
        assert "sim_txt2img" in str(app.screen.query_one("#sweep-source").render())
        await pilot.press("w", "backspace", "3", "enter")
        view = app.screen.view
        await until(pilot, lambda: len(view.jobs) == 3)
        await pilot.press("s")
        await until(pilot, lambda: view.result is not None)
        assert view.result.ok
        (folder,) = (data_dir / "batches").iterdir()
        assert folder.name.startswith("sim_txt2img-")
        assert len([p for p in folder.iterdir() if p.suffix == ".png" and p.stem != "contact_sheet"]) == 3
        assert (folder / "contact_sheet.png").exists()


async def test_palette_opens_the_batch_file_input(tmp_path):
    app = make_app(tmp_path, ("studio", DEAD_URL))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("8")
        assert isinstance(app.screen, BatchScreen)
        await pilot.press("ctrl+p", *"batch file", "enter")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "batch-file")


async def test_quitting_during_a_batch_asks_then_leaves_no_task_errors(two_sims, tmp_path, caplog):
    import gc

    from pistachio_tui.ui.dialogs import ConfirmScreen

    shutil.copy(SIM_WORKFLOW, tmp_path / "wf.json")
    (tmp_path / "long.toml").write_text('workflow = "wf.json"\ncount = 60\noutput = "out"\n')
    app = make_app(tmp_path, ("left", two_sims[0].url), ("right", two_sims[1].url))
    async with app.run_test(size=(80, 24)) as pilot:
        await load_by_keyboard(pilot, "long.toml")
        view = app.screen.view
        await until(pilot, lambda: len(view.jobs) == 60)
        await pilot.press("s")
        await until(pilot, lambda: view.counts()["done"] >= 1)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "batch" in str(app.screen.query_one("Label").render())
        await pilot.press("n")
        assert view.running, "No keeps the batch running"
        await pilot.press("q", "y")
    gc.collect()
    await asyncio.sleep(0.1)
    gc.collect()
    leaked = [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not leaked, leaked


async def test_an_interrupted_batch_resumes_from_its_output_folder(two_sims, tmp_path):
    shutil.copy(SIM_WORKFLOW, tmp_path / "wf.json")
    (tmp_path / "b.toml").write_text('workflow = "wf.json"\ncount = 30\nseed_mode = "increment"\n'
                                     'start_seed = 7\noutput = "out"\n')
    app = make_app(tmp_path, ("left", two_sims[0].url), ("right", two_sims[1].url))
    async with app.run_test(size=(80, 24)) as pilot:
        await load_by_keyboard(pilot, "b.toml")
        view = app.screen.view
        await until(pilot, lambda: len(view.jobs) == 30)
        await pilot.press("s")
        await until(pilot, lambda: view.counts()["done"] >= 2)
        await pilot.press("x")
        await until(pilot, lambda: view.result is not None)
    done_before = sum(1 for line in (tmp_path / "out" / ".pistachio-batch.jsonl").read_text().splitlines()
                      if '"done"' in line)
    assert 2 <= done_before < 30
    (tmp_path / "b.toml").unlink()  # the folder alone is enough

    app = make_app(tmp_path, ("left", two_sims[0].url), ("right", two_sims[1].url))
    async with app.run_test(size=(80, 24)) as pilot:
        await load_by_keyboard(pilot, "out")
        view = app.screen.view
        await until(pilot, lambda: len(view.jobs) == 30)
        assert "Loaded resume of out" in hint(app)
        assert view.counts()["done"] == done_before, "finished jobs show as done from the start"
        await pilot.press("s")
        await until(pilot, lambda: view.result is not None, timeout=30)
        assert view.result.ok
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(job["params"]["seed"] for job in manifest["jobs"]) == list(range(7, 37))


async def test_the_sweep_runs_the_values_typed_on_workflows(two_sims, tmp_path, data_dir):
    from textual.widgets import Input

    app = make_app(tmp_path, ("left", two_sims[0].url), ("right", two_sims[1].url))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.manager.active.state != "connecting")
        await pilot.press("2")
        workflows = app.screen
        workflows.open_workflow(SIM_WORKFLOW)
        await until(pilot, lambda: app.open_workflow is not None and app.open_workflow.converted)
        steps = next(i for i, p in enumerate(workflows.preview.params) if p.kind == "steps")
        workflows.query_one(f"#param-{steps}", Input).value = "3"
        await until(pilot, lambda: app.open_workflow.values[steps] == "3")
        await pilot.press("8", "w", "backspace", "1", "enter")
        await until(pilot, lambda: len(app.screen.view.jobs) == 1)
    (folder,) = (data_dir / "batches").iterdir()
    prompt = json.loads((folder / "workflow.json").read_text())
    assert [node["inputs"]["steps"] for node in prompt.values() if "steps" in node["inputs"]] == [3]


async def test_slash_filters_the_jobs_sorts_and_escape_clears(sim, tmp_path):
    from pistachio_tui.ui.widgets.filter_table import FilterInput, FilterTable

    shutil.copy(SIM_WORKFLOW, tmp_path / "wf.json")
    (tmp_path / "six.toml").write_text('workflow = "wf.json"\ncount = 6\nseed_mode = "increment"\n'
                                       'start_seed = 100\noutput = "out"\n')
    app = make_app(tmp_path, ("studio", sim.url))
    async with app.run_test(size=(80, 24)) as pilot:
        await load_by_keyboard(pilot, "six.toml")
        view = app.screen.view
        jobs = app.screen.query_one("#batch-jobs", FilterTable)
        await until(pilot, lambda: jobs.row_count == 6)
        assert app.focused is jobs
        await pilot.press("slash", *"seed 103")
        assert isinstance(app.focused, FilterInput)
        await until(pilot, lambda: jobs.row_count == 1)
        await pilot.press("escape")
        assert jobs.row_count == 6 and not app.screen.query(FilterInput)
        await pilot.press("greater_than_sign", "equals_sign")
        assert [str(jobs.get_cell_at((i, 0))) for i in range(6)] == ["6", "5", "4", "3", "2", "1"]
        # A filter kept while the batch runs: each job joins the list as it finishes.
        await pilot.press("slash", *"done", "enter")
        assert jobs.row_count == 0 and app.focused is jobs
        await pilot.press("s")
        await until(pilot, lambda: view.result is not None)
        assert jobs.row_count == 6
        await pilot.press("escape")
        assert jobs.filter_text == ""
        await pilot.press("escape", "1")
        assert app.current_mode == "servers", "Esc with no filter leaves the keys to the screen"


async def test_a_long_output_folder_fits_the_summary_at_80_columns_keeping_its_name(sim, tmp_path):
    shutil.copy(SIM_WORKFLOW, tmp_path / "wf.json")
    deep = "/".join(["projects", "client-work-2026", "campaign-autumn", "renders-for-review", "batches"])
    (tmp_path / "b.toml").write_text(f'workflow = "wf.json"\ncount = 2\noutput = "{deep}/final-sweep-v3"\n')
    sim.knobs.step_delay = 0.05  # a second per job: long enough to read the status while it runs
    app = make_app(tmp_path, ("studio", sim.url))
    async with app.run_test(size=(80, 24)) as pilot:
        await load_by_keyboard(pilot, "b.toml")
        view = app.screen.view
        await until(pilot, lambda: len(view.jobs) == 2)
        summary = app.screen.query_one("#batch-summary")
        lines = str(summary.render()).splitlines()
        assert len(lines) == 2, lines
        output = lines[1]
        assert output.startswith("Output projects/") and output.endswith("/final-sweep-v3"), output
        assert "…" in output and len(output) <= summary.content_region.width, "one line, cut in the middle"
        await pilot.press("s")
        await until(pilot, lambda: "Running 2 jobs → final-sweep-v3" in str(view.status.render()))
        await until(pilot, lambda: view.result is not None)
        assert str(summary.render()).splitlines()[1] == output


def test_short_path_is_relative_or_under_home_and_keeps_the_name(tmp_path, monkeypatch):
    from pathlib import Path

    from pistachio_tui.ui.format import short_path

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert short_path(tmp_path / "work" / "out" / "sweep") == "out/sweep"
    assert short_path(tmp_path / "home" / "renders") == "~/renders"
    assert short_path(Path("/srv/a/b/c/d/e/f/batch-1"), 20) == "/srv/a/b/c/…/batch-1"
    assert short_path(Path("/srv/a/a-very-long-folder-name"), 12) == "…folder-name"
