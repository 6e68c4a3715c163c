"""Run folders written by a replica of upstream train.py's loop (step saves, resumes, x-axes, endings)."""

from __future__ import annotations

import json

import pytest
from tensorboardX import SummaryWriter

from pistachio_tui.cli import exit_codes, main
from pistachio_tui.training.replay import TrainerConfig, replay_run, resume_run
from pistachio_tui.training.watch import RunWatcher


def u_curve(best_step: int, floor: float = 0.08) -> object:
    """Eval loss falling to ``floor`` at ``best_step``, rising after it."""
    return lambda step: round(floor + 0.001 * abs(step - best_step) + (0.05 if step == 0 else 0), 6)


STEP_SAVES = TrainerConfig(epochs=5, steps_per_epoch=7, save_every_n_epochs=None, save_every_n_steps=4,
                           eval_every_n_steps=4, eval_every_n_epochs=1)


def test_step_saves_are_candidates_and_best_names_the_folder(tmp_path):
    run_dir = replay_run(tmp_path / "out", STEP_SAVES, u_curve(16))
    state = RunWatcher(run_dir).poll()
    names = [(c.name, c.step) for c in state.candidates()]
    # 35 steps: step saves every 4, and the final epoch5 (step 35 is no multiple of 4).
    assert names == [(f"step{n}", n) for n in range(4, 35, 4)] + [("epoch5", 35)]
    assert state.candidate("step16").eval_loss == pytest.approx(0.08)
    pick = state.convergence()
    assert (pick.best, pick.best_step) == ("step16", 16)
    assert state.steps_per_epoch == 7 and state.epoch_end_steps[5] == 35


def test_best_and_promote_by_checkpoint_name_on_the_cli(tmp_path, capsys):
    run_dir = replay_run(tmp_path / "out", STEP_SAVES, u_curve(16))
    assert main(["train", "best", str(tmp_path / "out")]) == exit_codes.OK
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "step16 (step 16): lowest eval loss 0.08; rose for the next 3 evals"
    assert "★ step16     step     16  0.0800" in lines
    assert "--checkpoint step16" in captured.err
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    assert main(["train", "promote", str(run_dir), "--checkpoint", "step16", "--comfy", str(comfy),
                 "--json"]) == exit_codes.OK
    assert json.loads(capsys.readouterr().out)["path"].endswith("out_20260820-1000-step16.safetensors")
    assert main(["train", "promote", str(run_dir), "--checkpoint", "step17", "--comfy", str(comfy)]) == \
        exit_codes.REJECTED
    assert "Cannot promote step17" in capsys.readouterr().err
    assert main(["train", "promote", str(run_dir), "--epoch", "5", "--comfy", str(comfy)]) == exit_codes.OK


def test_max_steps_ends_on_a_step_save(tmp_path):
    cfg = TrainerConfig(epochs=10, steps_per_epoch=6, max_steps=20, save_every_n_epochs=1)
    run_dir = replay_run(tmp_path / "out", cfg, u_curve(12))
    state = RunWatcher(run_dir).poll()
    assert [c.name for c in state.candidates()] == ["epoch1", "epoch2", "epoch3", "step20"]
    assert state.status == "complete" and state.total_steps == 20
    assert state.convergence().best == "epoch2"


def test_resumed_run_uses_the_newest_event_file(tmp_path):
    """Killed after step 30, resumed from global_step20: epochs 3 and 4 are saved and evaluated again."""
    cfg = TrainerConfig(epochs=6, steps_per_epoch=10, checkpoint_steps=frozenset({20}))
    run_dir = replay_run(tmp_path / "out", cfg, u_curve(30), stop_after=34)
    first = RunWatcher(run_dir).poll()
    assert first.convergence().best == "epoch3"
    # The resumed run goes elsewhere: epoch 3's eval is now worse and epoch 4 is the minimum.
    resume_run(run_dir, cfg, u_curve(40))
    state = RunWatcher(run_dir).poll()
    assert state.resumed_at == (3, 21)
    assert state.eval_loss_by_epoch()[3] == pytest.approx(0.09)
    assert state.convergence().best == "epoch4"
    # TensorBoard alone says the same.
    (run_dir / "train.log").unlink()
    assert RunWatcher(run_dir).poll().convergence().best == "epoch4"


@pytest.mark.parametrize("logging_steps", [1, 3])
def test_examples_x_axis_and_sparse_logging(tmp_path, logging_steps):
    cfg = TrainerConfig(epochs=6, steps_per_epoch=8, global_batch=4, x_axis_examples=True,
                        logging_steps=logging_steps, eval_every_n_steps=5, save_every_n_steps=5)
    run_dir = replay_run(tmp_path / "out", cfg, u_curve(15))
    (run_dir / "train.log").unlink()  # TensorBoard alone: the x values are examples
    state = RunWatcher(run_dir).poll()
    assert state.global_batch_size == 4 and state.steps_per_epoch == 8
    assert sorted(state.eval_loss_by_step())[:4] == [0, 5, 8, 10]
    assert state.eval_loss_by_epoch()[2] == pytest.approx(0.081)
    assert state.convergence().best == "step15"
    assert max(s for s, _ in state.loss_series.points) <= 48


def test_sparse_logging_without_epoch_evals_pins_the_epoch_length(tmp_path):
    cfg = TrainerConfig(epochs=5, steps_per_epoch=7, logging_steps=4, eval_every_n_epochs=None,
                        eval_every_n_steps=10, save_every_n_epochs=1)
    run_dir = replay_run(tmp_path / "out", cfg, u_curve(20))
    (run_dir / "train.log").unlink()
    state = RunWatcher(run_dir).poll()
    assert state.steps_per_epoch == 7
    assert [(c.name, c.step) for c in state.candidates()][:2] == [("epoch1", 7), ("epoch2", 14)]


def test_watch_before_the_run_folder_exists(tmp_path):
    prepared = tmp_path / "alice_lora"
    (prepared / "logs").mkdir(parents=True)
    out = prepared / "runs"
    (prepared / "4090_wan14b.toml").write_text(f'output_dir = "{out}"\nepochs = 3\n[model]\ntype = "wan"\n')
    log = prepared / "logs" / "train.log"
    log.write_text("caching latents: /data/alice/train\ncaching latents: (1.0, 1)\n")
    watcher = RunWatcher(prepared)
    state = watcher.poll()
    assert (state.status, state.run_dir, state.caching) == ("caching", None, "latents: (1.0, 1)")
    cfg = TrainerConfig(epochs=3, steps_per_epoch=4)
    replay_run(out, cfg, u_curve(8), caching=False, log_path=log)
    state = watcher.poll()
    assert state.run_dir == out / "20260820_10-00-00" and state.status == "complete"
    assert state.convergence().best == "epoch2"
    watcher.close()


def test_caching_log_outside_the_runs_waits_for_a_new_run(tmp_path):
    out = tmp_path / "out"
    replay_run(out, TrainerConfig(epochs=2, steps_per_epoch=3), u_curve(3))
    log = tmp_path / "next.log"
    log.write_text("caching latents: /data/train\n")
    watcher = RunWatcher(out, log=log)
    state = watcher.poll()
    assert state.status == "caching" and state.run_dir is None and state.checkpoints is None
    replay_run(out, TrainerConfig(epochs=2, steps_per_epoch=3), u_curve(3), name="20260821_08-00-00",
               caching=False, log_path=log)
    assert watcher.poll().run_dir == out / "20260821_08-00-00"
    watcher.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_finished_run_without_a_log_ends(tmp_path):
    run_dir = replay_run(tmp_path / "out", TrainerConfig(epochs=3, steps_per_epoch=4), u_curve(8))
    (run_dir / "train.log").unlink()
    clock = Clock()
    watcher = RunWatcher(run_dir, clock=clock, process_check=lambda name: True)
    assert not watcher.poll().ended
    clock.now += 121
    state = watcher.poll()
    assert state.ended and state.status == "complete" and "final save" in state.ended_reason


def test_crashed_run_without_a_log_ends_without_eta(tmp_path):
    run_dir = replay_run(tmp_path / "out", TrainerConfig(epochs=3, steps_per_epoch=4), u_curve(8),
                         stop_after=6)
    (run_dir / "train.log").unlink()
    clock = Clock()
    running = {"train.py": True}
    seen: list[str | None] = []

    def check(name: str | None) -> bool:
        seen.append(name)
        return running["train.py"]

    watcher = RunWatcher(run_dir, clock=clock, process_check=check)
    state = watcher.poll()
    assert state.status == "training" and not state.ended
    clock.now += 1000
    assert not watcher.poll().ended  # idle but the trainer is still there (a long eval, a save)
    running["train.py"] = False
    clock.now += 10  # processes are looked at every 10 s
    state = watcher.poll()
    assert state.ended and state.status == "stopped" and state.eta_s is None
    assert seen[-1] == "wan_lora.toml"


def test_a_trainer_seen_running_then_gone_ends_the_run_soon(tmp_path):
    run_dir = replay_run(tmp_path / "out", TrainerConfig(epochs=3, steps_per_epoch=4), u_curve(8), stop_after=6)
    (run_dir / "train.log").unlink()
    clock = Clock()
    running = {"now": True}
    watcher = RunWatcher(run_dir, clock=clock, process_check=lambda name: running["now"])
    assert watcher.poll().status == "training"
    running["now"] = False  # killed: no traceback, no log line
    clock.now += 31
    state = watcher.poll()
    assert state.ended and state.status == "stopped"
    # From another machine the trainer is never seen: only a long silence ends the run.
    remote = RunWatcher(run_dir, clock=clock, process_check=lambda name: False)
    assert remote.poll().status == "training"
    clock.now += 31
    assert not remote.poll().ended
    clock.now += 900
    assert remote.poll().status == "stopped"


def test_crash_with_traceback_ends_follow_and_shows_no_eta(tmp_path, capsys):
    run_dir = replay_run(tmp_path / "out", TrainerConfig(epochs=3, steps_per_epoch=4), u_curve(8),
                         stop_after=6)
    with open(run_dir / "train.log", "a") as fh:
        fh.write("[rank0]: Traceback (most recent call last):\n[rank0]:   File \"train.py\", line 9\n"
                 "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.27 GiB.\n")
    watcher = RunWatcher(run_dir, failed_after_s=0, process_check=lambda name: None)
    state = watcher.poll()
    assert state.status == "failed" and state.ended and state.eta_s is None
    code = main(["train", "watch", str(run_dir), "--follow", "--interval", "0.01"])
    assert code == exit_codes.FAILED
    assert "ETA" not in capsys.readouterr().out.splitlines()[0]


def test_tensorboardx_files_are_read_the_same(tmp_path):
    """The reader does not depend on which library wrote the event file."""
    cfg = TrainerConfig(epochs=4, steps_per_epoch=5, save_every_n_steps=3, eval_every_n_steps=3)
    a = replay_run(tmp_path / "a", cfg, u_curve(9))
    b = replay_run(tmp_path / "b", cfg, u_curve(9), writer_factory=SummaryWriter)
    for run_dir in (a, b):
        (run_dir / "train.log").unlink()
    sa, sb = RunWatcher(a).poll(), RunWatcher(b).poll()
    assert sa.eval_loss_by_step() == pytest.approx(sb.eval_loss_by_step())
    assert sa.convergence().best == sb.convergence().best == "step9"


def test_multi_gpu_run_examples_axis_from_the_log_and_rank_tracebacks(tmp_path):
    """Two GPUs × micro batch 4: x is examples (8 per step); both ranks print the OOM traceback."""
    from pistachio_tui.training.synth import oom_traceback

    cfg = TrainerConfig(epochs=4, steps_per_epoch=5, global_batch=8, x_axis_examples=True,
                        save_every_n_steps=3, eval_every_n_steps=3)
    run_dir = replay_run(tmp_path / "out", cfg, u_curve(9), stop_after=13)
    with open(run_dir / "train.log", "a") as fh:
        for a, b in zip(oom_traceback(0), oom_traceback(1)):
            fh.write(f"{a}\n{b}\n")
    state = RunWatcher(run_dir, failed_after_s=0, process_check=lambda name: None).poll()
    assert state.global_batch_size == 8 and state.step == 13
    assert sorted(state.eval_loss_by_step()) == [0, 3, 5, 6, 9, 10, 12]
    assert state.convergence().best == "step9"
    assert [e.kind for e in state.errors] == ["oom", "oom"] and state.ended and state.eta_s is None
