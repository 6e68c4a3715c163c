"""Merge a run's console log, TensorBoard scalars and folder into one :class:`RunState`.

Use::

    watcher = RunWatcher("runs/20260820_10-00-00")
    state = watcher.poll()                 # sync: reads what is new, returns the state
    async for state in watcher.watch(1.0): # async: polls in a worker thread
        render(state)

:meth:`RunWatcher.poll` does blocking file IO, so async callers go through
:meth:`RunWatcher.watch` (or ``asyncio.to_thread(watcher.poll)``). The state
object is mutated only inside ``poll``; ``watch`` does not poll again until
the consumer asks for the next item, so reading it between items is safe.

DiffusionPipe's order of work at an epoch boundary (step S ends epoch E):
DeepSpeed prints the step-S lines, the trainer saves ``epochE``, prints
``Started new epoch: E+1``, runs eval and logs ``<name>/loss`` at x = S, then
logs ``train/epoch_loss`` at x = E. So an eval at step S belongs to epoch E,
and the eval at step 0 is the untrained baseline (epoch 0).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pistachio_tui.training import logparse as lp
from pistachio_tui.training.checkpoints import RunCheckpoints, scan_checkpoints
from pistachio_tui.training.converge import Convergence, find_convergence
from pistachio_tui.training.runs import RunConfig, RunPaths, find_log, read_run_config, resolve_run
from pistachio_tui.training.series import DownsampledSeries
from pistachio_tui.training.tail import DEFAULT_MAX_BYTES, LogFollower
from pistachio_tui.training.tbscalars import Scalar, ScalarReader

__all__ = ["RunState", "RunWatcher", "MAX_ERRORS", "MAX_EVALS"]

MAX_ERRORS = 50
MAX_EVALS = 5000
#: Log chunks (4 MiB each) read per poll; a bigger backlog continues next poll.
_MAX_CHUNKS_PER_POLL = 64


@dataclass
class RunState:
    """Everything known about one run. Unknown figures are None."""
    name: str
    run_dir: Path | None
    log_path: Path | None
    #: "waiting" | "caching" | "training" | "eval" | "complete" | "quit" | "failed"
    status: str = "waiting"
    epoch: int | None = None
    step: int | None = None
    total_epochs: int | None = None
    max_steps: int | None = None
    steps_per_epoch: int | None = None
    global_batch_size: int | None = None
    loss: float | None = None
    loss_ema: float | None = None
    lr: tuple[float, ...] | None = None
    iter_time: float | None = None
    samples_per_sec: float | None = None
    nan_count: int = 0
    caching: str | None = None
    resumed_at: tuple[int, int] | None = None
    last_saved: str | None = None
    loss_series: DownsampledSeries = field(default_factory=DownsampledSeries)
    #: Eval loss per eval-set name: (x step, loss), in arrival order.
    evals: dict[str, deque[tuple[int, float]]] = field(default_factory=dict)
    #: Last step of each finished epoch.
    epoch_end_steps: dict[int, int] = field(default_factory=dict)
    checkpoints: RunCheckpoints | None = None
    errors: deque[lp.ErrorSeen] = field(default_factory=lambda: deque(maxlen=MAX_ERRORS))
    eval_names: list[str] = field(default_factory=list)

    @property
    def it_per_s(self) -> float | None:
        return 1.0 / self.iter_time if self.iter_time else None

    @property
    def total_steps(self) -> int | None:
        by_epochs = (self.total_epochs * self.steps_per_epoch
                     if self.total_epochs and self.steps_per_epoch else None)
        candidates = [v for v in (by_epochs, self.max_steps) if v]
        return min(candidates) if candidates else None

    @property
    def eta_s(self) -> float | None:
        """Seconds of training left (eval and save time not included)."""
        if self.status == "complete":
            return 0.0
        total = self.total_steps
        if total is None or self.step is None or not self.iter_time:
            return None
        return max(0, total - self.step) * self.iter_time

    @property
    def progress(self) -> float | None:
        total = self.total_steps
        return None if not total or self.step is None else min(1.0, self.step / total)

    @property
    def eval_name(self) -> str | None:
        """The eval set used for picking epochs: the config's first, else the first seen."""
        for name in self.eval_names:
            if name in self.evals:
                return name
        return next(iter(self.evals), None)

    def epoch_of_step(self, step: int) -> int | None:
        """The epoch whose end is ``step`` (0 for the step-0 baseline), if known."""
        if step == 0:
            return 0
        for epoch, end in self.epoch_end_steps.items():
            if end == step:
                return epoch
        if self.steps_per_epoch and step % self.steps_per_epoch == 0:
            return step // self.steps_per_epoch
        return None

    def eval_loss_by_epoch(self, name: str | None = None) -> dict[int, float]:
        """Eval loss matched to epoch boundaries (epoch 0 = before training)."""
        name = name or self.eval_name
        out: dict[int, float] = {}
        for step, loss in self.evals.get(name, ()) if name else ():
            epoch = self.epoch_of_step(step)
            if epoch is not None:
                out[epoch] = loss
        return dict(sorted(out.items()))

    @property
    def saved_epochs(self) -> list[int]:
        return self.checkpoints.usable_epochs if self.checkpoints else []

    def convergence(self, *, patience: int = 3, tolerance: float = 0.0,
                    chosen: int | None = None) -> Convergence:
        """The epoch to keep, among usable saves when the run folder is known."""
        return find_convergence(self.eval_loss_by_epoch(), patience=patience, tolerance=tolerance,
                                saved_epochs=self.saved_epochs if self.checkpoints else None,
                                chosen=chosen)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (series downsampled; errors without tracebacks)."""
        ck = self.checkpoints
        return {
            "name": self.name, "run_dir": _str(self.run_dir), "log_path": _str(self.log_path),
            "status": self.status, "epoch": self.epoch, "step": self.step,
            "total_epochs": self.total_epochs, "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps, "progress": self.progress,
            "global_batch_size": self.global_batch_size,
            "loss": _num(self.loss), "loss_ema": _num(self.loss_ema),
            "lr": list(self.lr) if self.lr else None, "it_per_s": self.it_per_s,
            "iter_time": self.iter_time, "eta_s": self.eta_s, "nan_count": self.nan_count,
            "resumed_at": list(self.resumed_at) if self.resumed_at else None,
            "eval_name": self.eval_name,
            "eval_loss_by_epoch": {str(k): _num(v) for k, v in self.eval_loss_by_epoch().items()},
            "saved": [{"name": s.name, "epoch": s.epoch, "step": s.step, "size": s.size,
                       "ok": s.ok, "problem": s.problem} for s in (ck.saved if ck else [])],
            "global_steps": ck.global_steps if ck else [],
            "saving": ck.saving if ck else False,
            "errors": [{"kind": e.kind, "line": e.line_no, "traceback_line": e.traceback_line,
                        "text": e.text, "suggestion": e.suggestion} for e in self.errors],
            "loss_series": [[s, _num(v)] for s, v in self.loss_series.points],
        }


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _num(value: float | None) -> float | str | None:
    """JSON has no NaN: non-finite numbers become strings ("nan", "inf")."""
    if value is None or math.isfinite(value):
        return value
    return str(value)


class RunWatcher:
    """Reads a run incrementally and keeps its :class:`RunState` current."""

    def __init__(self, target: Path | str, *, log: Path | str | None = None,
                 smoothing: float = 0.9, max_points: int = 2000,
                 chunk_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.paths: RunPaths = resolve_run(target, log)
        self._smoothing = smoothing
        self.config: RunConfig = read_run_config(self.paths.run_dir)
        self.state = RunState(self.paths.name, self.paths.run_dir, self.paths.log_path,
                              total_epochs=self.config.epochs, max_steps=self.config.max_steps,
                              loss_series=DownsampledSeries(max_points),
                              eval_names=self.config.eval_names)
        self._chunk_bytes = chunk_bytes
        self._follower = (LogFollower(self.paths.log_path, max_bytes=chunk_bytes)
                          if self.paths.log_path else None)
        self._parser = lp.LineParser()
        self._tb = ScalarReader(self.paths.run_dir) if self.paths.run_dir else None
        self._tb_last_train_step: int | None = None
        self._tb_last_wall: tuple[int, float] | None = None
        self._log_has_timing = False
        self._backlog = False
        # Log and TensorBoard both report each step's loss; count each step once.
        self._last_loss_step: int | None = None

    def close(self) -> None:
        if self._follower is not None:
            self._follower.close()

    def poll(self) -> RunState:
        """Read everything new (log, TensorBoard, run folder); return the state. Blocking."""
        if self._follower is None and self.paths.run_dir is not None:
            self._attach_late_log(self.paths.run_dir)
        self._backlog = self._follower is not None
        if self._follower is not None:
            for _ in range(_MAX_CHUNKS_PER_POLL):
                chunk = self._follower.read()
                if chunk.reset:
                    self._parser.reset()
                for offset, line in enumerate(chunk.lines):
                    for event in self._parser.feed(line, chunk.first_line_no + offset):
                        self._apply(event)
                if not chunk.lines:
                    self._backlog = False
                    break
        if self._tb is not None:
            while scalars := self._tb.read():
                for scalar in scalars:
                    self._apply_scalar(scalar)
        if self.paths.run_dir is not None:
            self.state.checkpoints = scan_checkpoints(self.paths.run_dir)
        return self.state

    def _attach_late_log(self, run_dir: Path) -> None:
        """Users often start ``tee`` after opening the watcher: pick the log up when it appears."""
        log = find_log(run_dir)
        if log is not None:
            self.paths = RunPaths(run_dir, log)
            self.state.log_path = log
            self._follower = LogFollower(log, max_bytes=self._chunk_bytes)

    @property
    def has_backlog(self) -> bool:
        """The last poll stopped before the end of a long log; poll again at once."""
        return self._backlog

    async def watch(self, interval: float = 1.0) -> AsyncIterator[RunState]:
        """Yield the state after every poll, forever; polls run in a worker thread.

        A long existing log is consumed over several polls (a state after each),
        without waiting ``interval`` in between.
        """
        try:
            while True:
                yield await asyncio.to_thread(self.poll)
                if not self._backlog:
                    await asyncio.sleep(interval)
        finally:
            self.close()

    # -- log events ---------------------------------------------------------

    def _apply(self, event: lp.LogEvent) -> None:
        s = self.state
        match event:
            case lp.StepInfo(step=step, lr=lr):
                s.lr = lr or s.lr
                self._set_step(step)
            case lp.StepLoss():
                self._set_step(event.step)
                self._add_loss(event.step, event.loss)
                if event.iter_time:
                    self._log_has_timing = True
                    s.iter_time = self._smooth(s.iter_time, event.iter_time)
                s.samples_per_sec = event.samples_per_sec
            case lp.EpochStarted(epoch=epoch):
                if s.step is not None:
                    self._end_epoch(epoch - 1, s.step)
                s.epoch = epoch
            case lp.EvalStarted():
                s.status = "eval"
            case lp.ModelSaved(name=name):
                s.last_saved = name
            case lp.Resumed(epoch=epoch, step=step):
                s.resumed_at = (epoch, step)
                s.epoch = epoch
                s.step = step - 1
                s.status = "training"
                s.loss_series.truncate_after(step - 1)
                self._last_loss_step = step - 1
            case lp.TrainingComplete():
                s.status = "complete"
            case lp.ManualQuit():
                s.status = "quit"
            case lp.GlobalBatchSize(size=size):
                s.global_batch_size = size
            case lp.Caching(what=what, path=path):
                s.status = "caching"
                s.caching = f"{what}: {path}"
            case lp.ErrorSeen(kind=kind):
                if kind == "nan_loss":
                    s.nan_count += 1
                    if s.nan_count > 1:
                        return
                else:
                    s.status = "failed"
                s.errors.append(event)

    def _set_step(self, step: int) -> None:
        s = self.state
        s.step = step
        if s.epoch is None:
            s.epoch = 1
        if s.status not in ("complete", "quit"):
            s.status = "training"

    def _add_loss(self, step: int, loss: float) -> None:
        s = self.state
        if self._last_loss_step is not None and step <= self._last_loss_step:
            return
        self._last_loss_step = step
        s.loss = loss
        s.loss_series.append(step, loss)
        if math.isfinite(loss):
            s.loss_ema = self._smooth(s.loss_ema, loss)

    def _smooth(self, previous: float | None, value: float) -> float:
        if previous is None:
            return value
        return self._smoothing * previous + (1 - self._smoothing) * value

    def _end_epoch(self, epoch: int, last_step: int) -> None:
        s = self.state
        if epoch < 1:
            return
        s.epoch_end_steps[epoch] = last_step
        previous = s.epoch_end_steps.get(epoch - 1, 0 if epoch == 1 else None)
        if previous is not None and last_step > previous:
            s.steps_per_epoch = last_step - previous

    # -- TensorBoard --------------------------------------------------------

    def _apply_scalar(self, scalar: Scalar) -> None:
        s = self.state
        tag = scalar.tag
        if tag == "train/loss":
            self._tb_last_train_step = scalar.step
            self._add_loss(scalar.step, scalar.value)
            if s.step is None or scalar.step > s.step:
                self._set_step(scalar.step)
            self._time_from_tb(scalar)
        elif tag == "train/epoch_loss":
            if self._tb_last_train_step is not None and scalar.step not in s.epoch_end_steps:
                self._end_epoch(scalar.step, self._tb_last_train_step)
            following = scalar.step + 1
            if s.total_epochs:
                following = min(following, s.total_epochs)
            if s.epoch is None or following > s.epoch:
                s.epoch = following
        elif tag.endswith("/loss") and not tag.startswith("train/"):
            name = tag[: -len("/loss")]
            series = s.evals.setdefault(name, deque(maxlen=MAX_EVALS))
            if not any(step == scalar.step for step, _ in series):
                series.append((scalar.step, scalar.value))

    def _time_from_tb(self, scalar: Scalar) -> None:
        """Without a console log, step timing comes from event wall times."""
        if self._log_has_timing:
            return
        if self._tb_last_wall is not None:
            step0, wall0 = self._tb_last_wall
            if scalar.step > step0 and scalar.wall_time > wall0:
                per_step = (scalar.wall_time - wall0) / (scalar.step - step0)
                self.state.iter_time = self._smooth(self.state.iter_time, per_step)
        self._tb_last_wall = (scalar.step, scalar.wall_time)
