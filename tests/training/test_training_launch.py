"""train start / resume: the trainer run as upstream's README says, its console kept in the run folder.

A stand-in ``deepspeed`` on PATH runs the checkout's ``train.py``; the stand-in ``train.py``
prints the caching lines, waits (the trainer creates the run folder only after caching and
model loading), then trains through the replica of upstream's loop, printing to stdout.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from pistachio_tui.cli import exit_codes, main
from pistachio_tui.training.launch import LaunchProblem, plan_resume
from pistachio_tui.training.runs import resolve_run
from pistachio_tui.training.watch import RunWatcher, trainer_running

FAKE_DEEPSPEED = """#!{python}
import os, sys
args = sys.argv[1:]
num = [a for a in args if a.startswith("--num_gpus=")]
rest = [a for a in args if not a.startswith("--num_gpus=")]
os.execv(sys.executable, [sys.executable] + rest)
"""

FAKE_TRAIN = """
import os, sys, time
from pathlib import Path
import toml
from pistachio_tui.training.replay import TrainerConfig, replay_run, resume_run
args = sys.argv[1:]
config = toml.load(args[args.index("--config") + 1])
out = Path(config["output_dir"])
print("env:", os.environ.get("PYTORCH_CUDA_ALLOC_CONF"), os.environ.get("NCCL_P2P_DISABLE"), flush=True)
cfg = TrainerConfig(epochs=3, steps_per_epoch=4)
curve = lambda step: 0.1 + abs(step - 8) / 100
stdout = Path("/dev/stdout")
if "--resume_from_checkpoint" in args:
    resume_run(out / args[args.index("--resume_from_checkpoint") + 1], cfg, curve, log_path=stdout)
else:
    print("caching latents: /data/alice/train", flush=True)
    print("caching latents: (1.0, 1)", flush=True)
    time.sleep(1.5)
    stop = int(os.environ["FAKE_STOP"]) if os.environ.get("FAKE_STOP") else None
    replay_run(out, cfg, curve, caching=False, log_path=stdout, stop_after=stop)
"""


@pytest.fixture
def setup(tmp_path, monkeypatch):
    dp = tmp_path / "diffusion-pipe"
    dp.mkdir()
    (dp / "train.py").write_text(FAKE_TRAIN)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "deepspeed").write_text(FAKE_DEEPSPEED.format(python=sys.executable))
    (bin_dir / "deepspeed").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    prepared = tmp_path / "alice_lora"
    prepared.mkdir()
    config = prepared / "4090_wan14b.toml"
    config.write_text(f'output_dir = "{prepared / "runs"}"\nepochs = 3\nsave_every_n_epochs = 1\n'
                      '[model]\ntype = "wan"\n')
    return dp, config


def test_start_keeps_the_whole_console_inside_the_run_folder(setup):
    dp, config = setup
    code = main(["train", "start", str(config), "--gpu", "4090", "--num-gpus", "1", "--diffusion-pipe", str(dp)])
    assert code == exit_codes.OK
    out = config.parent / "runs"
    assert [p.name for p in out.iterdir()] == ["20260820_10-00-00"]  # nothing else in output_dir
    run_log = out / "20260820_10-00-00" / "train.log"
    text = run_log.read_text()
    assert text.startswith("env: expandable_segments:True 1\ncaching latents: /data/alice/train\n")
    assert text.rstrip().endswith("TRAINING COMPLETE!")
    (launcher_log,) = (config.parent / "logs").iterdir()
    assert os.stat(launcher_log).st_ino == os.stat(run_log).st_ino
    state = RunWatcher(config.parent).poll()
    assert state.status == "complete" and state.log_path == run_log


def test_detached_start_is_watched_from_caching_to_the_end_then_resumed(setup, monkeypatch):
    dp, config = setup
    monkeypatch.setenv("FAKE_STOP", "6")
    assert main(["train", "start", str(config), "--gpu", "h100", "--detach", "--diffusion-pipe", str(dp)]) == \
        exit_codes.OK
    watcher = RunWatcher(config.parent)
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        state = watcher.poll()
        seen.append((state.status, state.run_dir is not None))
        if state.step == 6 and not trainer_running(config.name):
            break
        time.sleep(0.05)
    watcher.close()
    assert ("caching", False) in seen and seen[-1] == ("training", True)
    run_dir = config.parent / "runs" / "20260820_10-00-00"
    text = (run_dir / "train.log").read_text()
    assert "env: expandable_segments:True None" in text  # no NCCL variables on an H100
    with pytest.raises(LaunchProblem, match="no resume state yet"):
        plan_resume(run_dir, gpu=None, diffusion_pipe=dp)
    (run_dir / "global_step4").mkdir()
    (run_dir / "global_step4" / "client_state.json").write_text('{"step": 4, "examples": 4, "epoch": 2}')
    (run_dir / "latest").write_text("global_step4")
    monkeypatch.delenv("FAKE_STOP")
    assert main(["train", "resume", str(run_dir), "--gpu", "h100", "--diffusion-pipe", str(dp)]) == exit_codes.OK
    text = (run_dir / "train.log").read_text()
    assert "Resuming at epoch: 2, step: 5" in text and text.rstrip().endswith("TRAINING COMPLETE!")
    assert text.index("caching latents") < text.index("Resuming")  # appended to the same log
    assert resolve_run(run_dir).log_path == run_dir / "train.log"


def test_dry_run_prints_the_command(setup, capsys):
    dp, config = setup
    assert main(["train", "start", str(config), "--gpu", "4090", "--num-gpus", "2", "--diffusion-pipe", str(dp),
                 "--dry-run"]) == exit_codes.OK
    err = capsys.readouterr().err
    assert ("NCCL_IB_DISABLE=1 NCCL_P2P_DISABLE=1" in err or "NCCL_P2P_DISABLE=1 NCCL_IB_DISABLE=1" in err)
    assert f"deepspeed --num_gpus=2 train.py --deepspeed --config {config}" in err
    assert not (config.parent / "runs").exists()
    assert main(["train", "start", str(config), "--gpu", "4090", "--diffusion-pipe", str(config.parent)]) == \
        exit_codes.USAGE
    assert "no diffusion-pipe checkout" in capsys.readouterr().err


def test_tmux_start_survives_in_its_own_session(setup, tmp_path, monkeypatch, capsys):
    import shutil
    import subprocess

    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed for this test")
    dp, config = setup
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))  # a tmux server of this test's own
    monkeypatch.delenv("TMUX", raising=False)
    try:
        assert main(["train", "start", str(config), "--gpu", "4090", "--tmux", "--diffusion-pipe", str(dp)]) == \
            exit_codes.OK
        err = capsys.readouterr().err
        session = err.split("tmux session ")[1].split(")")[0]
        assert session.startswith("pistachio-4090_wan14b-")
        assert subprocess.run(["tmux", "has-session", "-t", session]).returncode == 0
        run_log = config.parent / "runs" / "20260820_10-00-00" / "train.log"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (run_log.exists() and "TRAINING COMPLETE!" in run_log.read_text()):
            time.sleep(0.1)
        assert "TRAINING COMPLETE!" in run_log.read_text()
    finally:
        subprocess.run(["tmux", "kill-server"], capture_output=True)
