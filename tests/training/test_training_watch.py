"""One RunState merged from the console log, TensorBoard and the run folder."""

from __future__ import annotations

import asyncio
import math

import pytest

from pistachio_tui.training.errors import RunNotFound
from pistachio_tui.training.runs import resolve_run
from pistachio_tui.training.synth import log_lines, write_log
from pistachio_tui.training.watch import MAX_ERRORS, RunWatcher
from tests.training.helpers import make_run


def test_finished_run_from_output_dir(tmp_path):
    run = make_run(tmp_path)
    state = RunWatcher(run.output_dir).poll()
    assert state.run_dir == run.run_dir and state.log_path == run.log_path
    assert state.status == "complete"
    assert (state.epoch, state.step, state.steps_per_epoch, state.total_epochs) == (30, 240, 8, 30)
    assert state.eta_s == 0 and state.progress == 1.0
    assert state.lr == (2e-05,) and state.global_batch_size == 1
    assert state.it_per_s == pytest.approx(1 / 3.162)
    evals = state.eval_loss_by_epoch()
    assert list(evals) == list(range(31))
    assert min(evals, key=evals.get) == 17
    assert all(math.isclose(evals[e], run.eval_losses[e], rel_tol=1e-6) for e in evals)
    assert state.saved_epochs == list(range(1, 31))
    assert state.checkpoints.global_steps == [240] and state.checkpoints.latest == "global_step240"
    assert state.epoch_end_steps[1] == 8 and state.epoch_end_steps[30] == 240



def test_synthetic_log_reports_the_step_time_it_is_given(tmp_path):
    log = write_log(tmp_path / "train.log", epochs=2, steps_per_epoch=5, iter_time=0.25)
    state = RunWatcher(log).poll()
    assert state.it_per_s == pytest.approx(4.0)

def test_live_run_eta_and_growth(tmp_path):
    run = make_run(tmp_path, tensorboard=False)
    lines = list(log_lines(epochs=30, steps_per_epoch=8))
    cut = lines.index("Started new epoch: 6") + 1
    run.log_path.write_text("\n".join(lines[:cut]) + "\n")
    watcher = RunWatcher(run.run_dir, log=run.log_path)
    state = watcher.poll()
    assert (state.status, state.epoch, state.step, state.steps_per_epoch) == ("training", 6, 40, 8)
    assert state.eta_s == pytest.approx((240 - 40) * 3.162)
    with open(run.log_path, "a") as fh:
        end = next(i for i, line in enumerate(lines) if line.startswith("steps: 42 "))
        fh.write("\n".join(lines[cut:end + 1]) + "\n")
    state = watcher.poll()
    assert state.step == 42
    assert state.loss_ema is not None and state.loss is not None


def test_tensorboard_only_run(tmp_path):
    run = make_run(tmp_path)
    run.log_path.unlink()
    state = RunWatcher(run.run_dir).poll()
    assert state.log_path is None
    assert state.step == 240 and state.steps_per_epoch == 8 and state.epoch == 30
    assert min(state.eval_loss_by_epoch().items(), key=lambda kv: kv[1])[0] == 17
    assert len(state.loss_series) > 0


def test_log_file_alone(tmp_path):
    log = write_log(tmp_path / "console.log", epochs=3, steps_per_epoch=5)
    paths = resolve_run(log)
    assert paths.run_dir is None and paths.log_path == log
    state = RunWatcher(log).poll()
    assert (state.status, state.epoch, state.step, state.steps_per_epoch) == ("complete", 3, 15, 5)
    assert state.total_epochs is None and state.eta_s == 0
    assert state.checkpoints is None


def test_crash_with_oom_is_failed_with_advice(tmp_path):
    log = write_log(tmp_path / "crash.log", epochs=3, steps_per_epoch=5, crash_at_step=7,
                    interleaved_traceback=False)
    state = RunWatcher(log).poll()
    assert state.status == "failed" and state.step == 6
    kinds = [e.kind for e in state.errors]
    assert kinds == ["oom", "oom"]
    assert state.errors[0].line_no > 0 and "blocks_to_swap" in state.errors[0].suggestion


def test_nan_counted_once_as_error(tmp_path):
    log = write_log(tmp_path / "nan.log", epochs=2, steps_per_epoch=5, nan_steps=frozenset({3, 4, 8}))
    state = RunWatcher(log).poll()
    assert state.nan_count == 3
    assert [e.kind for e in state.errors if e.kind == "nan_loss"] == ["nan_loss"]
    assert state.loss_ema is not None and math.isfinite(state.loss_ema)
    assert state.to_dict()["loss_series"][2][1] == "nan"


def test_resume_rewinds_the_step(tmp_path):
    log = tmp_path / "resume.log"
    lines = list(log_lines(epochs=3, steps_per_epoch=5, caching=False))
    lines += ["Resuming training from checkpoint. Resuming at epoch: 2, step: 6",
              "steps: 6 loss: 0.3000 iter time (s): 2.0 samples/sec: 0.5"]
    log.write_text("\n".join(lines) + "\n")
    state = RunWatcher(log).poll()
    assert state.resumed_at == (2, 6) and state.step == 6 and state.epoch == 2
    assert state.loss == 0.3 and state.loss_series.last_step == 6


def test_state_stays_bounded(tmp_path):
    log = tmp_path / "long.log"
    with open(log, "w") as fh:
        for line in log_lines(epochs=40, steps_per_epoch=50, nan_steps=frozenset()):
            fh.write(line + "\n")
        for i in range(MAX_ERRORS + 30):
            fh.write(f"Traceback (most recent call last):\nValueError: boom {i}\n")
    state = RunWatcher(log, max_points=64).poll()
    assert len(state.loss_series) < 64
    assert state.loss_series.points[0][0] == 1 and state.loss_series.points[-1][0] > 1500
    assert len(state.errors) == MAX_ERRORS and state.errors[-1].text.endswith(str(MAX_ERRORS + 29))


def test_output_dir_picks_newest_run(tmp_path):
    out = tmp_path / "output"
    make_run(tmp_path, name="20260101_00-00-00")
    newer = make_run(tmp_path, name="20260820_12-00-00", tensorboard=False)
    assert resolve_run(out).run_dir == newer.run_dir


def test_unknown_target_is_a_clear_error(tmp_path):
    with pytest.raises(RunNotFound, match="does not exist"):
        resolve_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunNotFound, match="holds no DiffusionPipe run"):
        resolve_run(tmp_path / "empty")


async def test_async_watch_polls_in_a_thread(tmp_path):
    run = make_run(tmp_path, tensorboard=False)
    watcher = RunWatcher(run.run_dir)
    stream = watcher.watch(interval=0.01)
    state = await asyncio.wait_for(anext(stream), 10)
    assert state.status == "complete"
    await stream.aclose()


async def test_long_log_is_read_over_several_polls_without_waiting(tmp_path):
    log = write_log(tmp_path / "long.log", epochs=10, steps_per_epoch=20)
    watcher = RunWatcher(log, chunk_bytes=256)
    stream = watcher.watch(interval=3600)  # a sleep between backlog polls would hang the test
    steps = []
    while True:
        state = await asyncio.wait_for(anext(stream), 10)
        steps.append(state.step)
        if not watcher.has_backlog:
            break
    await stream.aclose()
    assert len(steps) > 1 and steps == sorted(steps) and steps[-1] == 200


def test_log_created_after_the_watcher_is_picked_up(tmp_path):
    run = make_run(tmp_path, tensorboard=False)
    run.log_path.unlink()
    watcher = RunWatcher(run.run_dir)
    assert watcher.poll().log_path is None
    write_log(run.output_dir / "console.log", epochs=2, steps_per_epoch=3)
    state = watcher.poll()
    assert state.log_path == run.output_dir / "console.log" and state.step == 6


def test_watching_a_run_while_it_is_written(tmp_path):
    """The default writer (TensorBoard's own) and a watcher polling between steps."""
    from pistachio_tui.training.synth import write_run

    seen = {}
    watcher: list[RunWatcher] = []

    def pace(step: int) -> bool:
        if step == 1:
            watcher.append(RunWatcher(tmp_path / "out"))
        if step in (20, 41, 64):
            state = watcher[0].poll()
            seen[step] = (state.status, state.epoch, state.step, state.steps_per_epoch,
                          state.saved_epochs[-1:], sorted(state.eval_loss_by_epoch()))
        return step < 64

    write_run(tmp_path / "out", epochs=10, steps_per_epoch=8, best_epoch=5, pace=pace)
    assert seen[20] == ("training", 3, 20, 8, [2], [0, 1, 2])
    assert seen[41] == ("training", 6, 41, 8, [5], [0, 1, 2, 3, 4, 5])
    assert seen[64][:3] == ("training", 9, 64)  # TensorBoard already holds epoch 8's epoch_loss
    final = watcher[0].poll()
    assert final.status == "training" and final.step == 64 and final.eta_s == pytest.approx(16 * 3.162)
    watcher[0].close()


def test_each_step_counts_once_from_log_and_tensorboard(tmp_path):
    both = make_run(tmp_path / "a")
    log_only = make_run(tmp_path / "b", tensorboard=False)
    a = RunWatcher(both.run_dir, max_points=8).poll()
    b = RunWatcher(log_only.run_dir, max_points=8).poll()
    assert a.loss_ema == pytest.approx(b.loss_ema) and a.loss_series.points == b.loss_series.points


def test_a_dataset_folder_is_not_a_log(tmp_path):
    from PIL import Image

    (tmp_path / "ds").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "ds" / "a.png")
    (tmp_path / "ds" / "a.txt").write_text("pstch, a caption")
    with pytest.raises(RunNotFound, match="holds no DiffusionPipe run"):
        resolve_run(tmp_path / "ds")


async def test_a_failing_poll_is_a_reason_on_the_state_and_watching_goes_on(tmp_path):
    watcher = RunWatcher(make_run(tmp_path, tensorboard=False).run_dir)
    real, calls = watcher.poll, 0

    def flaky():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise PermissionError(13, "Permission denied")
        return real()

    watcher.poll = flaky
    states = watcher.watch(interval=0.01)
    first = await anext(states)
    assert first.watch_error == "Reading the run failed: PermissionError: [Errno 13] Permission denied"
    second = await anext(states)
    assert second.watch_error is None and second.step is not None
    await states.aclose()
