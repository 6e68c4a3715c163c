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

What upstream ``train.py`` writes for step S (see :mod:`.replay`): the
step's console lines; at an epoch's last step ``epochE/`` is saved and
``Started new epoch: E+1`` printed; ``train/loss`` at x = S (every
``logging_steps``); evals ``<name>/loss`` at x = S; ``train/epoch_loss`` at
x = E; then ``stepS/`` is saved. With ``x_axis_examples`` every x except the
epoch's is the number of examples seen, ``S × global batch``. So an eval at
step S pairs with the save made at S — ``epochE/`` when S ends epoch E,
``stepS/`` — and the eval at step 0 is the untrained baseline.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pistachio_tui.failures import cancelled_meanwhile, unexpected_reason
from pistachio_tui.training import logparse as lp
from pistachio_tui.training.checkpoints import RunCheckpoints, SavedModel, scan_checkpoints
from pistachio_tui.training.converge import Convergence, find_convergence
from pistachio_tui.training.epochs import EpochEnds
from pistachio_tui.training.errors import TrainingError
from pistachio_tui.training.runs import RunConfig, RunPaths, find_log, read_run_config, resolve_run, runs_in
from pistachio_tui.training.series import DownsampledSeries
from pistachio_tui.training.tail import DEFAULT_MAX_BYTES, LogFollower
from pistachio_tui.training.tbscalars import Scalar, ScalarReader

__all__ = ["RunState", "RunWatcher", "Candidate", "MAX_ERRORS", "MAX_EVALS", "trainer_running"]

MAX_ERRORS = 50
MAX_EVALS = 5000
#: Log chunks (4 MiB each) read per poll; a bigger backlog continues next poll.
_MAX_CHUNKS_PER_POLL = 64
#: Scalars held back while the examples x-axis cannot be converted to steps yet.
_MAX_PENDING = 10_000
#: Statuses after which nothing more happens.
_FINAL = ("complete", "quit", "stopped")


@dataclass(frozen=True)
class Candidate:
    """One saved checkpoint with the eval made at the step it was saved."""
    name: str
    step: int | None
    eval_loss: float | None
    saved: SavedModel

    @property
    def ok(self) -> bool:
        return self.saved.ok


@dataclass
class RunState:
    """Everything known about one run. Unknown figures are None."""
    name: str
    run_dir: Path | None
    log_path: Path | None
    #: "waiting" | "caching" | "training" | "eval" | "complete" | "quit" | "failed" | "stopped"
    status: str = "waiting"
    epoch: int | None = None
    step: int | None = None
    total_epochs: int | None = None
    max_steps: int | None = None
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
    #: Eval loss per eval-set name: step → loss; a value written again (resumed run) replaces the old.
    evals: dict[str, dict[int, float]] = field(default_factory=dict)
    epoch_ends: EpochEnds = field(default_factory=EpochEnds)
    #: Save folder → step it was saved at, as the console showed it.
    saved_at: dict[str, int] = field(default_factory=dict)
    checkpoints: RunCheckpoints | None = None
    errors: deque[lp.ErrorSeen] = field(default_factory=lambda: deque(maxlen=MAX_ERRORS))
    eval_names: list[str] = field(default_factory=list)
    #: True once the run is over (finished, quit, stopped, or failed for good).
    ended: bool = False
    #: Why the latest poll failed (an unreadable file, a parser bug); None once a poll succeeds.
    watch_error: str | None = None
    #: Why the run counts as over when no console line said so.
    ended_reason: str | None = None

    @property
    def steps_per_epoch(self) -> int | None:
        return self.epoch_ends.steps_per_epoch

    @property
    def epoch_end_steps(self) -> dict[int, int]:
        """Last step of each epoch whose end was seen exactly."""
        return dict(sorted(self.epoch_ends.exact.items()))

    @property
    def it_per_s(self) -> float | None:
        return 1.0 / self.iter_time if self.iter_time else None

    @property
    def total_steps(self) -> int | None:
        spe = self.steps_per_epoch
        by_epochs = self.total_epochs * spe if self.total_epochs and spe else None
        candidates = [v for v in (by_epochs, self.max_steps) if v]
        return min(candidates) if candidates else None

    @property
    def eta_s(self) -> float | None:
        """Seconds of training left (eval and save time not included); None once it failed or stopped."""
        if self.status == "complete":
            return 0.0
        if self.status in ("failed", "quit", "stopped"):
            return None
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
        """The eval set used for picking: the config's first, else the first seen."""
        for name in self.eval_names:
            if name in self.evals:
                return name
        return next(iter(self.evals), None)

    def eval_loss_by_step(self, name: str | None = None) -> dict[int, float]:
        name = name or self.eval_name
        return dict(sorted(self.evals.get(name, {}).items())) if name else {}

    def epoch_of_step(self, step: int) -> int | None:
        """The epoch whose end is ``step`` (0 for the step-0 baseline), if known."""
        return self.epoch_ends.epoch_ending_at(step)

    def eval_loss_by_epoch(self, name: str | None = None) -> dict[int, float]:
        """The evals made at epoch ends, by epoch (epoch 0 = before training)."""
        out = {}
        for step, loss in self.eval_loss_by_step(name).items():
            epoch = self.epoch_of_step(step)
            if epoch is not None:
                out[epoch] = loss
        return dict(sorted(out.items()))

    def step_label(self, step: int) -> str:
        epoch = self.epoch_of_step(step)
        return f"epoch {epoch}" if epoch else f"step {step}"

    def checkpoint_step(self, saved: SavedModel) -> int | None:
        """The training step whose weights ``saved`` holds, if known."""
        if saved.step is not None:
            return saved.step
        if saved.name in self.saved_at:
            return self.saved_at[saved.name]
        return self.epoch_ends.end_of(saved.epoch) if saved.epoch is not None else None

    def candidates(self) -> list[Candidate]:
        """Every save (``epochN/``, ``stepN/``) with the eval at its step, by step."""
        evals = self.eval_loss_by_step()
        out = []
        for saved in self.checkpoints.saved if self.checkpoints else []:
            step = self.checkpoint_step(saved)
            out.append(Candidate(saved.name, step, evals.get(step) if step is not None else None, saved))
        return sorted(out, key=lambda c: (c.step is None, c.step or 0, c.saved.epoch is None))

    def candidate(self, name: str) -> Candidate | None:
        return next((c for c in self.candidates() if c.name == name), None)

    @property
    def saved_epochs(self) -> list[int]:
        return self.checkpoints.usable_epochs if self.checkpoints else []

    def convergence(self, *, patience: int = 3, tolerance: float = 0.0,
                    chosen: str | None = None) -> Convergence:
        """The save to keep, among usable saves when the run folder is known."""
        saves: dict[int, str] | None = None
        if self.checkpoints is not None:
            saves = {}
            # An epoch's last step may also be a step save: same weights, the epoch name reads better.
            for c in reversed(self.candidates()):
                if c.ok and c.step is not None:
                    saves[c.step] = c.name
        return find_convergence(self.eval_loss_by_step(), saves, patience=patience, tolerance=tolerance,
                                chosen=chosen, label=self.step_label)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (series downsampled; errors without tracebacks)."""
        ck = self.checkpoints
        return {
            "name": self.name, "run_dir": _str(self.run_dir), "log_path": _str(self.log_path),
            "status": self.status, "ended": self.ended, "ended_reason": self.ended_reason,
            "epoch": self.epoch, "step": self.step,
            "total_epochs": self.total_epochs, "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps, "progress": self.progress,
            "global_batch_size": self.global_batch_size, "caching": self.caching,
            "loss": _num(self.loss), "loss_ema": _num(self.loss_ema),
            "lr": list(self.lr) if self.lr else None, "it_per_s": self.it_per_s,
            "iter_time": self.iter_time, "eta_s": self.eta_s, "nan_count": self.nan_count,
            "resumed_at": list(self.resumed_at) if self.resumed_at else None,
            "eval_name": self.eval_name,
            "eval_loss_by_step": {str(k): _num(v) for k, v in self.eval_loss_by_step().items()},
            "eval_loss_by_epoch": {str(k): _num(v) for k, v in self.eval_loss_by_epoch().items()},
            "saved": [{"name": c.name, "epoch": c.saved.epoch, "step": c.step, "size": c.saved.size,
                       "eval_loss": _num(c.eval_loss), "ok": c.ok, "problem": c.saved.problem}
                      for c in self.candidates()],
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


def trainer_running(config_name: str | None) -> bool | None:
    """Is a DiffusionPipe ``train.py`` running here (for this config file name, when given)?

    Reads ``/proc``; None where that is not available (then nothing can be concluded).
    """
    proc = Path("/proc")
    if not (proc / "self" / "cmdline").exists():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode("utf-8", "replace") for a in args]
        if not any(w == "train.py" or w.endswith("/train.py") for w in words):
            continue
        if config_name is None or any(os.path.basename(w) == config_name for w in words):
            return True
    return False


class _TensorBoardFile:
    """What one event file (one trainer process) showed so far, for epoch-end bounds."""

    def __init__(self, name: str, resumed: bool) -> None:
        self.name = name
        #: An earlier file exists: this one was written by a resumed run.
        self.resumed = resumed
        self.last_train: int | None = None
        self.last_eval: int | None = None
        self.eval_since_epoch_end: int | None = None
        self.awaiting_high: list[int] = []


class RunWatcher:
    """Reads a run incrementally and keeps its :class:`RunState` current.

    ``finish_after_s``: with the final save written and no new data for this
    long, a run without a console log counts as complete. ``stall_after_s``:
    with no new data for this long and no trainer process, it counts as
    stopped. A failed run ends once nothing new arrived for ``failed_after_s``
    (a traceback from a dataloader worker is not the end of a run).
    """

    def __init__(self, target: Path | str, *, log: Path | str | None = None,
                 smoothing: float = 0.9, max_points: int = 2000,
                 chunk_bytes: int = DEFAULT_MAX_BYTES, finish_after_s: float = 120.0,
                 stall_after_s: float = 900.0, failed_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 process_check: Callable[[str | None], bool | None] = trainer_running) -> None:
        self._target = target
        self.paths: RunPaths = resolve_run(target, log)
        self._smoothing = smoothing
        self._chunk_bytes = chunk_bytes
        self._finish_after_s = finish_after_s
        self._stall_after_s = stall_after_s
        self._failed_after_s = failed_after_s
        self._clock = clock
        self._process_check = process_check
        self._last_activity = clock()
        self._seen_running = False
        self._last_check: tuple[float, bool | None] | None = None
        self._known_runs = set(runs_in(self.paths.output_dir)) if self.paths.output_dir else set()
        self._explicit_log = log is not None
        self.config: RunConfig = read_run_config(self.paths.run_dir)
        self.state = RunState(self.paths.name, self.paths.run_dir, self.paths.log_path,
                              loss_series=DownsampledSeries(max_points))
        self._apply_config()
        self._follower = (LogFollower(self.paths.log_path, max_bytes=chunk_bytes)
                          if self.paths.log_path else None)
        self._parser = lp.LineParser()
        self._tb = ScalarReader(self.paths.run_dir) if self.paths.run_dir else None
        self._tb_file: _TensorBoardFile | None = None
        self._tb_last_wall: tuple[int, float] | None = None
        self._pending: list[Scalar] = []
        self._axis_last_x: dict[str, int] = {}
        self._log_has_timing = False
        self._backlog = False
        self._checked_log_run = False
        self._ck_signature: tuple = ()
        # Log and TensorBoard both report each step's loss; count each step once.
        self._last_loss_step: int | None = None

    def _apply_config(self) -> None:
        s, c = self.state, self.config
        s.total_epochs, s.max_steps, s.eval_names = c.epochs, c.max_steps, c.eval_names

    def close(self) -> None:
        if self._follower is not None:
            self._follower.close()

    def poll(self) -> RunState:
        """Read everything new (log, TensorBoard, run folder); return the state. Blocking."""
        if self.paths.run_dir is None:
            self._attach_new_run()
        elif self._follower is None:
            self._attach_late_log(self.paths.run_dir)
        self._read_log()
        if not self._checked_log_run:
            self._drop_stale_run()
        if self._tb is not None:
            while scalars := self._tb.read():
                self._touch()
                for scalar in scalars:
                    self._apply_scalar(scalar)
        if self.paths.run_dir is not None:
            self.state.checkpoints = scan_checkpoints(self.paths.run_dir)
            signature = tuple((c.name, c.size) for c in self.state.checkpoints.saved)
            if signature != self._ck_signature:
                self._ck_signature = signature
                self._touch()
        self._check_ended()
        return self.state

    def _touch(self) -> None:
        self._last_activity = self._clock()

    def _read_log(self) -> None:
        self._backlog = self._follower is not None
        if self._follower is None:
            return
        for _ in range(_MAX_CHUNKS_PER_POLL):
            chunk = self._follower.read()
            if chunk.reset:
                self._parser.reset()
            if chunk.lines:
                self._touch()
            for offset, line in enumerate(chunk.lines):
                for event in self._parser.feed(line, chunk.first_line_no + offset):
                    self._apply(event)
            if not chunk.lines:
                self._backlog = False
                break

    def _drop_stale_run(self) -> None:
        """A log still caching latents, kept outside the run folders, belongs to a run whose
        folder does not exist yet: the output folder's newest run is an older one."""
        self._checked_log_run = True
        run_dir, log = self.paths.run_dir, self.paths.log_path
        if run_dir is None or log is None or self.paths.output_dir is None:
            return
        if self.state.status == "caching" and self.state.step is None and run_dir not in log.parents:
            self.paths = RunPaths(None, log, self.paths.output_dir)
            self.state.run_dir = None
            self._tb = None

    def _attach_new_run(self) -> None:
        """While the trainer caches latents and loads the model there is no run folder yet."""
        output_dir = self.paths.output_dir
        if output_dir is None:
            return
        if self._follower is None and not self._explicit_log:
            # The launcher's log may be created after the watcher opened.
            try:
                log = resolve_run(self._target).log_path
            except TrainingError:
                log = None
            if log is not None and log.parent != output_dir:
                self.paths = RunPaths(None, log, output_dir)
                self.state.log_path = log
                self._follower = LogFollower(log, max_bytes=self._chunk_bytes)
        runs = [r for r in runs_in(output_dir) if r not in self._known_runs or self.state.status != "caching"]
        if not runs:
            return
        run_dir = runs[-1]
        log = self.paths.log_path or find_log(run_dir)
        self.paths = RunPaths(run_dir, log, output_dir)
        self.state.run_dir, self.state.name = run_dir, run_dir.name
        self.config = read_run_config(run_dir)
        self._apply_config()
        self._tb = ScalarReader(run_dir)
        if self._follower is None and log is not None:
            self.state.log_path = log
            self._follower = LogFollower(log, max_bytes=self._chunk_bytes)
        self._touch()

    def _attach_late_log(self, run_dir: Path) -> None:
        """Users often start ``tee`` after opening the watcher: pick the log up when it appears."""
        log = find_log(run_dir)
        if log is not None:
            self.paths = RunPaths(run_dir, log, self.paths.output_dir)
            self.state.log_path = log
            self._follower = LogFollower(log, max_bytes=self._chunk_bytes)

    def _check_ended(self) -> None:
        s = self.state
        if s.status in _FINAL:
            s.ended = True
            return
        idle = self._clock() - self._last_activity
        if s.status == "failed":
            s.ended = idle >= self._failed_after_s or self._process_check(self._config_name()) is False
            return
        s.ended = False
        running = self._trainer_running()
        self._seen_running = self._seen_running or running is True
        # A trainer seen running here and now gone is proof; otherwise (watching from another
        # machine, or before it showed up) only a long silence is.
        gone_for = self._failed_after_s if self._seen_running else self._stall_after_s
        if self.paths.run_dir is not None and idle >= self._finish_after_s and self._final_save_written():
            s.status, s.ended = "complete", True
            s.ended_reason = f"the final save is written and nothing new for {idle:.0f} s"
        elif idle >= gone_for and running is False:
            s.status, s.ended = "stopped", True
            s.ended_reason = (f"no trainer process and nothing new for {idle / 60:.0f} min — it crashed "
                              "or was killed; resume from the newest global_step")

    def _trainer_running(self) -> bool | None:
        """The process check, at most every 10 s (it reads every process's command line)."""
        now = self._clock()
        if self._last_check is None or now - self._last_check[0] >= 10.0:
            self._last_check = (now, self._process_check(self._config_name()))
        return self._last_check[1]

    def _config_name(self) -> str | None:
        return self.config.path.name if self.config.path and self.config.path.parent == self.paths.run_dir else None

    def _final_save_written(self) -> bool:
        ck = self.state.checkpoints
        if ck is None:
            return False
        finals = set()
        if self.config.epochs:
            finals.add(f"epoch{self.config.epochs}")
        if self.config.max_steps:
            finals.add(f"step{self.config.max_steps}")
        return any(s.ok and s.name in finals for s in ck.saved)

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
                try:
                    state = await asyncio.to_thread(self.poll)
                    state.watch_error = None
                except Exception as exc:
                    # Ending the generator would freeze the curves with no word why; say it and poll again.
                    if cancelled_meanwhile():
                        raise asyncio.CancelledError from exc
                    state = self.state
                    state.watch_error = f"Reading the run failed: {unexpected_reason(exc)}"
                    self._backlog = False
                yield state
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
                    self._log_boundary(epoch - 1, s.step)
                s.epoch = epoch
            case lp.EvalStarted():
                if s.status not in _FINAL:
                    s.status = "eval"
            case lp.ModelSaved(name=name):
                s.last_saved = name
                if s.step is not None and self.config.steps_per_print == 1:
                    s.saved_at[name] = s.step
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

    def _log_boundary(self, epoch: int, step: int) -> None:
        spp = self.config.steps_per_print
        if spp == 1:
            self.state.epoch_ends.seen(epoch, step)
        else:
            self.state.epoch_ends.bounded(epoch, step, step + spp - 1)

    def _set_step(self, step: int) -> None:
        s = self.state
        s.step = step
        if s.epoch is None:
            s.epoch = 1
        if s.status not in _FINAL:
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

    # -- TensorBoard --------------------------------------------------------

    @property
    def _examples_per_step(self) -> int | None:
        """How many x units one step is: 1, or the global batch with ``x_axis_examples``."""
        return self.state.global_batch_size if self.config.x_axis_examples else 1

    def _learn_global_batch(self, scalar: Scalar) -> None:
        """Consecutive ``train/loss`` x values of one file are ``logging_steps`` steps apart."""
        if scalar.tag != "train/loss":
            return
        previous = self._axis_last_x.get(scalar.file)
        self._axis_last_x[scalar.file] = scalar.step
        k = self.config.logging_steps
        if previous is not None and scalar.step > previous and (scalar.step - previous) % k == 0:
            self.state.global_batch_size = (scalar.step - previous) // k

    def _apply_scalar(self, scalar: Scalar) -> None:
        if self._examples_per_step is None:
            self._learn_global_batch(scalar)
            if len(self._pending) < _MAX_PENDING:
                self._pending.append(scalar)
            if self._examples_per_step is None:
                return
            pending, self._pending = self._pending, []
            for held in pending:
                self._apply_known(held)
            return
        self._apply_known(scalar)

    def _file(self, scalar: Scalar) -> _TensorBoardFile:
        if self._tb_file is None or self._tb_file.name != scalar.file:
            self._tb_file = _TensorBoardFile(scalar.file, resumed=self._tb_file is not None)
        return self._tb_file

    def _apply_known(self, scalar: Scalar) -> None:
        s = self.state
        tag = scalar.tag
        tb = self._file(scalar)
        if tag == "train/epoch_loss":
            self._tb_epoch_end(tb, int(scalar.step))
            return
        step = scalar.step // (self._examples_per_step or 1)
        if tag == "train/loss":
            last = s.loss_series.last_step
            if tb.resumed and tb.last_train is None and last is not None and step <= last:
                # A resumed run's new event file redoes steps after its resume state.
                s.loss_series.truncate_after(step - 1)
                self._last_loss_step = min(self._last_loss_step or 0, step - 1)
            for epoch in tb.awaiting_high:
                s.epoch_ends.set_high(epoch, step - 1)
            tb.awaiting_high.clear()
            tb.last_train = step
            self._add_loss(step, scalar.value)
            if s.step is None or step > s.step:
                self._set_step(step)
            self._time_from_tb(step, scalar.wall_time)
        elif tag.endswith("/loss") and not tag.startswith("train/"):
            series = s.evals.setdefault(tag[: -len("/loss")], {})
            series[step] = scalar.value
            if len(series) > MAX_EVALS:
                del series[min(series)]
            tb.last_eval = tb.eval_since_epoch_end = step

    def _tb_epoch_end(self, tb: _TensorBoardFile, epoch: int) -> None:
        s = self.state
        every = self.config.eval_every_n_epochs
        if every and epoch % every == 0 and tb.eval_since_epoch_end is not None:
            s.epoch_ends.seen(epoch, tb.eval_since_epoch_end)
        else:
            seen = [v for v in (tb.last_train, tb.last_eval) if v is not None]
            # Steps divisible by logging_steps are all logged, so the epoch ended before the next one.
            high = tb.last_train + self.config.logging_steps - 1 if tb.last_train is not None else None
            s.epoch_ends.bounded(epoch, max(seen, default=epoch), high)
            tb.awaiting_high.append(epoch)
        tb.eval_since_epoch_end = None
        following = epoch + 1
        if s.total_epochs:
            following = min(following, s.total_epochs)
        if s.epoch is None or following > s.epoch:
            s.epoch = following

    def _time_from_tb(self, step: int, wall_time: float) -> None:
        """Without a console log, step timing comes from event wall times."""
        if self._log_has_timing:
            return
        if self._tb_last_wall is not None:
            step0, wall0 = self._tb_last_wall
            if step > step0 and wall_time > wall0:
                per_step = (wall_time - wall0) / (step - step0)
                self.state.iter_time = self._smooth(self.state.iter_time, per_step)
        self._tb_last_wall = (step, wall_time)
