"""Training view: a generated 30-epoch run (best epoch 17), promote into a ComfyUI tree, log search."""

from __future__ import annotations

from pathlib import Path

import pytest

from pistachio_tui.config import Settings
from pistachio_tui.training.synth import write_run
from pistachio_tui.ui.dialogs import TextModal, YesNo
from pistachio_tui.ui.training.view import TrainingView
from pistachio_tui.ui.widgets.loglines import LogLines
from tests.ui_views.harness import ViewApp, screen_text, until

LORA = "pstch-output_20260820-1000-epoch17.safetensors"


@pytest.fixture
def run_and_comfy(tmp_path):
    synth = write_run(tmp_path / "output", epochs=30, best_epoch=17)
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    return synth, comfy


def training_app(comfy: Path | None, run: Path | None = None) -> ViewApp:
    return ViewApp(lambda: TrainingView(Settings(comfy_dir=comfy), run=run, poll_interval=0.05))


async def watched(pilot) -> TrainingView:
    view = pilot.app.query_one(TrainingView)
    await until(pilot, lambda: view.state is not None and view.state.status == "complete"
                and view.convergence.best is not None and view._epoch_rows, "the run to be read")
    await pilot.pause()
    return view


async def test_typed_run_dir_shows_convergence_and_promotes_epoch_17(run_and_comfy):
    synth, comfy = run_and_comfy
    app = training_app(comfy)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        app.query_one("#train-path").value = str(synth.output_dir)
        await pilot.press("enter")
        view = await watched(pilot)
        assert view.convergence.best == "epoch17"
        assert view.selected_checkpoint() == "epoch17"
        text = screen_text(app)
        assert "epoch17 (step 136): lowest eval loss" in text and "epoch 30/30" in text
        await pilot.press("p")
        target = comfy / "models" / "loras" / LORA
        await until(pilot, target.exists, "the promoted LoRA")
        await until(pilot, lambda: "Promoted" in str(view.status.render()), "the promote message")
        assert "trigger word: pstch" in str(view.status.render())
        assert target.read_bytes() == (synth.run_dir / "epoch17" / "adapter_model.safetensors").read_bytes()


async def test_promote_refuses_overwrite_without_confirmation(run_and_comfy):
    synth, comfy = run_and_comfy
    loras = comfy / "models" / "loras"
    loras.mkdir()
    (loras / LORA).write_bytes(b"older")
    app = training_app(comfy, synth.run_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await watched(pilot)
        await pilot.press("p")
        assert isinstance(app.screen, YesNo)
        await pilot.press("n")
        assert (loras / LORA).read_bytes() == b"older"
        assert "Not promoted" in str(view.status.render())
        await pilot.press("p", "y")
        await until(pilot, lambda: "Replaced" in str(view.status.render()), "the replacement")
        assert (loras / LORA).read_bytes() != b"older"


async def test_promote_without_comfy_dir_says_what_to_set(run_and_comfy):
    synth, _ = run_and_comfy
    app = training_app(None, synth.run_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await watched(pilot)
        await pilot.press("p")
        assert "comfy_dir" in str(view.status.render())


async def test_log_search_config_and_launch_command(run_and_comfy):
    synth, comfy = run_and_comfy
    app = training_app(comfy, synth.run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        view = await watched(pilot)
        log = view.query_one(LogLines)
        await until(pilot, lambda: log.index is not None and log.index.progress.caught_up, "the log index")
        await pilot.press("slash")
        view.query_one("#train-search").value = "Started new epoch: 17"
        await pilot.press("enter")
        await until(pilot, lambda: log.mark is not None, "the search hit")
        assert "Started new epoch: 17" in log.index.lines(log.mark, 1)[0]
        await pilot.press("n")
        await until(pilot, lambda: "wrapped" in str(view.status.render()), "the search to wrap round")
        assert "Started new epoch: 17" in log.index.lines(log.mark, 1)[0]
        await pilot.press("y")
        assert "deepspeed --num_gpus=1 train.py" in app.clipboard_text
        assert "--resume_from_checkpoint \"20260820_10-00-00\"" in app.clipboard_text
        await pilot.press("f")
        assert isinstance(app.screen, TextModal)
        assert "eval_datasets" in screen_text(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, TextModal)


async def test_output_folder_lists_its_runs_and_switches(tmp_path):
    output = tmp_path / "output"
    older = write_run(output, name="20260801_09-00-00", epochs=10, best_epoch=6)
    write_run(output, name="20260820_10-00-00", epochs=30, best_epoch=17)
    app = training_app(None, output)
    async with app.run_test(size=(120, 40)) as pilot:
        view = await watched(pilot)
        runs = view.query_one("#train-runs")
        assert runs.display and runs.option_count == 2
        assert view.state.name == "20260820_10-00-00"
        runs.focus()
        runs.highlighted = 0
        await pilot.press("enter")
        await until(pilot, lambda: view.state is not None and view.state.name == older.run_dir.name
                    and view.state.status == "complete", "the older run")
        await until(pilot, lambda: view.convergence.best == "epoch6", "the older run's convergence")


async def test_not_a_run_is_an_error_line(tmp_path):
    app = training_app(None, tmp_path / "nowhere")
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TrainingView)
        await until(pilot, lambda: "does not exist" in str(view.status.render()), "the error")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_training_snapshot(snap_compare, size, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_run(Path("output"), epochs=30, best_epoch=17)

    async def settled(pilot):
        view = await watched(pilot)
        log = view.query_one(LogLines)
        await until(pilot, lambda: log.index.progress.caught_up, "the log index")

    app = ViewApp(lambda: TrainingView(Settings(), run=Path("output"), poll_interval=0.05))
    assert snap_compare(app, terminal_size=size, run_before=settled)
