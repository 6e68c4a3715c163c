"""Training view: a generated 30-epoch run (best epoch 17), promote into a ComfyUI tree, log search."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from textual.widgets import Static

from pistachio_tui.config import Settings
from pistachio_tui.training.synth import write_run
from pistachio_tui.ui.dialogs import TextModal, YesNo
from pistachio_tui.ui.remedies import SET_COMFY_DIR
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
        assert f"No local ComfyUI folder to promote into: set it ({SET_COMFY_DIR})" in str(view.status.render())


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
    write_run(Path("output"), epochs=6, best_epoch=4)

    async def settled(pilot):
        view = await watched(pilot)
        log = view.query_one(LogLines)
        await until(pilot, lambda: log.index.progress.caught_up, "the log index")
        # The table scrolls to the picked save and focus lands a frame or two later: shoot once both rest.
        table = view.query_one("#train-epochs")
        table.focus()
        seen: list[tuple] = []

        def resting() -> bool:
            seen.append((table.scroll_y, table.cursor_row, pilot.app.focused, log.scroll_y))
            return len(seen) > 20 and len(set(seen[-20:])) == 1

        await until(pilot, resting, "the table to come to rest")

    app = ViewApp(lambda: TrainingView(Settings(), run=Path("output"), poll_interval=0.05))
    assert snap_compare(app, terminal_size=size, run_before=settled)


async def test_tournament_tab_renders_the_grid_and_the_choice_promotes(tmp_path):
    from pistachio_tui.config import ServerConfig
    from pistachio_tui.sim.server import SimServer
    from pistachio_tui.training.replay import TrainerConfig, replay_run

    run_dir = replay_run(tmp_path / "out", TrainerConfig(epochs=5, steps_per_epoch=4), lambda s: abs(s - 12) + 1)
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "loras").mkdir(parents=True)
    (comfy / "models" / "checkpoints").mkdir()
    (comfy / "models" / "checkpoints" / "sd_xl_base_1.0.safetensors").write_bytes(b"x")
    sim = SimServer(step_delay=0.001, models_dir=comfy / "models")
    await sim.start()
    try:
        settings = Settings(comfy_dir=comfy, servers=[ServerConfig("sim", sim.url)])
        app = ViewApp(lambda: TrainingView(settings, run=run_dir, poll_interval=0.05))
        async with app.run_test(size=(120, 40)) as pilot:
            view = await watched(pilot)
            await pilot.press("t")
            view.query_one("#train-tour-wf").value = str(Path(__file__).resolve().parents[2] / "workflows"
                                                         / "sdxl_lora.json")
            await pilot.press("enter")
            await until(pilot, lambda: view.tournament is not None, "the tournament", rounds=1500)
            assert view.tournament.checkpoints == ["epoch1", "epoch2", "epoch3", "epoch4", "epoch5"]
            assert len(view.tournament.images) == 15 and view.tournament.sheet.is_file()
            assert "Saves down, prompts across" in str(view.status.render())
            view.query_one("#train-epochs").focus()
            await pilot.press("p")
            target = comfy / "models" / "loras" / "out_20260820-1000-epoch3.safetensors"
            await until(pilot, target.exists, "the promoted choice")
    finally:
        await sim.stop()


async def test_start_from_a_prepare_folder_runs_detached_and_is_watched(tmp_path, monkeypatch):
    import os
    import sys

    from tests.training.test_training_launch import FAKE_DEEPSPEED, FAKE_TRAIN

    dp = tmp_path / "diffusion-pipe"
    dp.mkdir()
    (dp / "train.py").write_text(FAKE_TRAIN)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "deepspeed").write_text(FAKE_DEEPSPEED.format(python=sys.executable))
    (bin_dir / "deepspeed").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DIFFUSION_PIPE_DIR", str(dp))
    prepared = tmp_path / "alice_lora"
    prepared.mkdir()
    (prepared / "4090_wan14b.toml").write_text(f'output_dir = "{prepared / "runs"}"\nepochs = 3\n'
                                               'save_every_n_epochs = 1\n[model]\ntype = "wan"\n')
    app = ViewApp(lambda: TrainingView(Settings(), run=prepared, poll_interval=0.05, gpu="4090"))
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(TrainingView)
        await until(pilot, lambda: view.watcher is not None and app.focused is view.query_one("#train-epochs"),
                    "the prepare folder to open")
        await pilot.press("R")
        assert isinstance(app.screen, YesNo)
        assert "NCCL_P2P_DISABLE=1" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: view.state is not None and view.state.status == "complete", "the run to finish",
                    rounds=3000)
        assert view.state.run_dir == prepared / "runs" / "20260820_10-00-00"
        assert (view.state.run_dir / "train.log").read_text().rstrip().endswith("TRAINING COMPLETE!")


async def test_caption_review_screen_edits_in_place(tmp_path):
    from PIL import Image

    from pistachio_tui.ui.training.captions import CaptionsScreen

    folder = tmp_path / "alice"
    folder.mkdir()
    for name, caption in [("a.png", "a red car"), ("b.png", "a red car"), ("c.png", None)]:
        Image.new("RGB", (32, 32)).save(folder / name)
        if caption is not None:
            (folder / name).with_suffix(".txt").write_text(caption)
    app = training_app(None, folder)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(TrainingView)
        await until(pilot, lambda: "DiffusionPipe run" in screen_text(app), "the open attempt")
        view.query_one("#train-epochs").focus()
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CaptionsScreen) and app.screen.review is not None,
                    "the caption screen")
        text = screen_text(app)
        assert "duplicate caption (same as b.png)" in text and "missing caption" in text
        await pilot.press("down", "enter")  # b.png
        edit = app.screen.query_one("#cap-edit")
        assert edit.value == "a red car"
        edit.value = "a blue car"
        await pilot.press("enter")
        await until(pilot, lambda: (folder / "b.txt").read_text() == "a blue car\n", "the caption written")
        await until(pilot, lambda: "duplicate" not in screen_text(app), "the duplicate flag to clear")
        await pilot.press("escape")
        assert not isinstance(app.screen, CaptionsScreen)


async def test_start_uses_the_diffusion_pipe_folder_set_in_the_app(tmp_path, monkeypatch):
    # Brackets and a space: the command is shown as written, not read as markup.
    dp = tmp_path / "[wan] tools" / "dp"
    dp.mkdir(parents=True)
    (dp / "train.py").write_text("")
    monkeypatch.delenv("DIFFUSION_PIPE_DIR", raising=False)
    prepared = tmp_path / "alice_lora"
    prepared.mkdir()
    (prepared / "4090_wan14b.toml").write_text(f'output_dir = "{prepared / "runs"}"\nepochs = 3\n'
                                               '[model]\ntype = "wan"\n')
    app = ViewApp(lambda: TrainingView(Settings(diffusion_pipe_dir=dp), run=prepared, poll_interval=0.05,
                                       gpu="4090"))
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(TrainingView)
        await until(pilot, lambda: view.watcher is not None, "the prepare folder to open")
        await pilot.press("R")
        assert isinstance(app.screen, YesNo)
        shown = str(app.screen.query_one(".dialog-text", Static).render())
        assert shown.startswith(f"cd {shlex.quote(str(dp))} && ")
        await pilot.press("n")
