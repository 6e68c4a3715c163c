"""Start and resume DiffusionPipe runs the way its README does, with the console kept.

The command is upstream's: ``deepspeed --num_gpus=N train.py --deepspeed --config X``
run from the diffusion-pipe checkout, with ``NCCL_P2P_DISABLE=1 NCCL_IB_DISABLE=1``
on cards without peer-to-peer (RTX 4090/5090) and
``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True`` against fragmentation.

The console (stdout and stderr, merged) must end up *inside the run's own
folder*: a file in ``output_dir`` itself would become the "newest entry" that
``--resume_from_checkpoint`` picks. But the trainer creates the run folder only
after caching latents and loading the model. So a small supervisor
(``python -m pistachio_tui.training.launch``) runs the trainer, writes its
output to ``<config folder>/logs/<start>.log``, and as soon as the new run
folder appears hard-links that same file into it as ``train.log``; writing goes
on through the open file, so both names always show everything. A resumed run
appends to the run's ``train.log``.

Detached (``--detach``: its own session, like ``nohup``) or in a tmux session
(``--tmux``), the run survives the SSH connection closing.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pistachio_tui.config import DIFFUSION_PIPE_CLONE, env_override, is_diffusion_pipe_checkout
from pistachio_tui.remedies import Need
from pistachio_tui.training.errors import TrainingError
from pistachio_tui.training.presets import GpuPreset
from pistachio_tui.training.runs import read_main_toml, runs_in

__all__ = ["LaunchPlan", "plan_launch", "plan_resume", "start", "find_diffusion_pipe", "LaunchProblem"]

LOG_NAME = "train.log"
_CANDIDATE_DIRS = ("~/diffusion-pipe", "/workspace/diffusion-pipe", "/diffusion-pipe")


class LaunchProblem(TrainingError):
    """The run cannot be started as asked; the message says what to fix, ``needs`` what to give."""

    def __init__(self, message: str, needs: Need | None = None) -> None:
        super().__init__(message)
        self.needs = needs


@dataclass(frozen=True)
class LaunchPlan:
    config: Path
    output_dir: Path
    diffusion_pipe: Path
    argv: list[str]
    env: dict[str, str]
    #: Where the console goes until the run folder exists.
    log_path: Path
    #: Set when resuming: the run folder whose ``train.log`` gets the console.
    run_dir: Path | None = None

    @property
    def shell_command(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return f"cd {shlex.quote(str(self.diffusion_pipe))} && {env} {shlex.join(self.argv)}"


def find_diffusion_pipe(explicit: Path | None = None) -> Path:
    """The diffusion-pipe checkout: ``explicit``, ``$DIFFUSION_PIPE_DIR``, or a usual place."""
    options = [explicit] if explicit else []
    override = env_override("DIFFUSION_PIPE_DIR")
    if override:
        options.append(Path(override))
    options += [Path(p).expanduser() for p in _CANDIDATE_DIRS]
    for folder in options:
        if folder is not None and is_diffusion_pipe_checkout(folder):
            return folder.resolve()
    raise LaunchProblem("no diffusion-pipe checkout found (a folder with train.py) in the usual places; get it "
                        f"with: {DIFFUSION_PIPE_CLONE}", needs=Need.DIFFUSION_PIPE)


def _env(gpu: GpuPreset | None) -> dict[str, str]:
    env = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    if gpu is not None and gpu.needs_nccl_workaround:
        env.update({"NCCL_P2P_DISABLE": "1", "NCCL_IB_DISABLE": "1"})
    return env


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d_%H-%M-%S")


def plan_launch(config: Path, *, gpu: GpuPreset | None, num_gpus: int = 1,
                diffusion_pipe: Path | None = None) -> LaunchPlan:
    config = config.expanduser().resolve()
    parsed = read_main_toml(config)
    if parsed is None or not isinstance(parsed.raw.get("output_dir"), str):
        raise LaunchProblem(f"{config} is not a DiffusionPipe main TOML with an output_dir")
    folder = find_diffusion_pipe(diffusion_pipe)
    argv = ["deepspeed", f"--num_gpus={num_gpus}", "train.py", "--deepspeed", "--config", str(config)]
    return LaunchPlan(config, Path(parsed.raw["output_dir"]).expanduser(), folder, argv, _env(gpu),
                      config.parent / "logs" / f"{_stamp()}.log")


def plan_resume(run_dir: Path, *, gpu: GpuPreset | None, num_gpus: int = 1,
                diffusion_pipe: Path | None = None) -> LaunchPlan:
    """Resume ``run_dir`` from its newest ``global_stepN`` with the config it was started with."""
    run_dir = run_dir.expanduser().resolve()
    latest = run_dir / "latest"
    if not latest.is_file():
        raise LaunchProblem(f"{run_dir.name} has no resume state yet (no global_stepN/ and no 'latest' file): "
                            "the trainer would stop with 'Unable to find latest file' — start a new run instead")
    configs = [c for c in sorted(run_dir.glob("*.toml")) if (p := read_main_toml(c)) is not None
               and isinstance(p.raw.get("output_dir"), str)]
    if not configs:
        raise LaunchProblem(f"{run_dir} holds no copy of the main TOML to resume with")
    plan = plan_launch(configs[0], gpu=gpu, num_gpus=num_gpus, diffusion_pipe=diffusion_pipe)
    if plan.output_dir.resolve() != run_dir.parent:
        raise LaunchProblem(f"{configs[0].name} names output_dir {plan.output_dir}, but the run lives in "
                            f"{run_dir.parent} — the trainer would look for the run in the wrong place")
    argv = plan.argv + ["--resume_from_checkpoint", run_dir.name]
    return LaunchPlan(plan.config, plan.output_dir, plan.diffusion_pipe, argv, plan.env, run_dir / LOG_NAME,
                      run_dir)


def start(plan: LaunchPlan, *, mode: str = "foreground") -> int | str:
    """Run ``plan``: "foreground" (returns the exit code), "detach" (returns the supervisor's
    pid) or "tmux" (returns the tmux session name)."""
    plan.log_path.parent.mkdir(parents=True, exist_ok=True)
    run_dir = ["--run-dir", str(plan.run_dir)] if plan.run_dir is not None else []
    supervisor = [sys.executable, "-m", "pistachio_tui.training.launch", "--log", str(plan.log_path), *run_dir,
                  "--output-dir", str(plan.output_dir), "--cwd", str(plan.diffusion_pipe),
                  *(f"--env={k}={v}" for k, v in plan.env.items()), "--", *plan.argv]
    if mode == "foreground":
        return subprocess.call(supervisor)
    if mode == "detach":
        with open(os.devnull, "rb") as nothing:
            proc = subprocess.Popen(supervisor, stdin=nothing, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        return proc.pid
    if mode == "tmux":
        if shutil.which("tmux") is None:
            raise LaunchProblem("tmux is not installed — use --detach instead")
        session = f"pistachio-{plan.config.stem}-{int(time.time())}"
        subprocess.run(["tmux", "new-session", "-d", "-s", session, shlex.join(supervisor)], check=True)
        return session
    raise ValueError(f"unknown mode {mode!r}")


def _link_into_run(log: Path, run_dir: Path) -> Path:
    target = run_dir / LOG_NAME
    try:
        os.link(log, target)
    except OSError:
        target.symlink_to(log)
    return target


def _supervise(args: argparse.Namespace) -> int:
    """Run the trainer, copy its merged output to the log (and our stdout), link the log
    into the run folder once the trainer creates it."""
    env = dict(os.environ)
    env.update(dict(item.split("=", 1) for item in args.env))
    known = set(runs_in(args.output_dir))
    linked = args.run_dir is not None
    looked = 0.0
    with open(args.log, "ab", buffering=0) as log:
        proc = subprocess.Popen(args.argv, cwd=args.cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
            if not linked and time.monotonic() - looked > 1.0:
                looked = time.monotonic()
                new = [r for r in runs_in(args.output_dir) if r not in known]
                if new:
                    _link_into_run(args.log, new[-1])
                    linked = True
        code = proc.wait()
    if not linked:
        new = [r for r in runs_in(args.output_dir) if r not in known]
        if new:
            _link_into_run(args.log, new[-1])
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pistachio_tui.training.launch")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--cwd", type=Path, required=True)
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.argv and args.argv[0] == "--":
        args.argv = args.argv[1:]
    return _supervise(args)


if __name__ == "__main__":
    sys.exit(main())
