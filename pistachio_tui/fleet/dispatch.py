"""Spread a batch's jobs over targets, retry elsewhere on failure, record results.

There is no scheduler of our own: each target gets at most ``slots`` jobs at a
time and pulls the next one when a slot frees, so faster or emptier targets
take more of the batch. A job that a target failed to deliver goes back in the
pool for another target.

Whatever goes wrong, the batch returns: every job ends done, failed (with the
reason) or stranded (with the reason), and an exception nobody expected (a
full disk, an output name the file system refuses, a prompt that cannot be
encoded) fails the job it happened in, not the batch.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pistachio_tui.fleet.cost import Metered, Rate, cost_summary
from pistachio_tui.fleet.journal import BatchLock, JobRecord, Journal, write_manifest, write_output
from pistachio_tui.fleet.spec import Job
from pistachio_tui.fleet.targets import Output, Target, TargetFailed

#: Failures in a row after which a target is taken out of the batch.
TARGET_DOWN_AFTER = 2
#: An output's extension as the server named it, when it is a plain one; else ``.bin``.
_PLAIN_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")
_log = logging.getLogger(__name__)


@dataclass
class BatchEvent:
    """Something the UI or CLI may show: a job started, finished, moved; a target left."""

    kind: str  # started | done | retry | failed | target_down | target_excluded
    job: str | None = None
    target: str | None = None
    message: str = ""


@dataclass
class TargetStats:
    """One target's share of the batch: jobs done, failures in a row, time spent."""

    name: str
    done: int = 0
    failures: int = 0
    #: Seconds with at least one batch job on the target (closed stretches only).
    busy_s: float = 0.0
    #: Every finished or abandoned job's seconds added up (jobs overlap on a target with slots).
    job_s: float = 0.0
    down: str | None = None
    _starts: list[float] = field(default_factory=list, repr=False)
    _busy_since: float | None = field(default=None, repr=False)

    def job_started(self, now: float) -> None:
        if not self._starts:
            self._busy_since = now
        self._starts.append(now)

    def job_ended(self, started: float, now: float) -> None:
        self._starts.remove(started)
        self.job_s += now - started
        if not self._starts and self._busy_since is not None:
            self.busy_s += now - self._busy_since
            self._busy_since = None

    def busy_until(self, now: float) -> float:
        """Busy seconds including the stretch still going on."""
        return self.busy_s + (now - self._busy_since if self._busy_since is not None else 0.0)

    def job_time_until(self, now: float) -> float:
        """Job seconds including the jobs still running."""
        return self.job_s + sum(now - start for start in self._starts)


@dataclass
class BatchResult:
    records: list[JobRecord]
    failed: dict[str, str] = field(default_factory=dict)
    #: Jobs never run because every target left the batch (or it was cancelled).
    stranded: list[str] = field(default_factory=list)
    #: Why the stranded jobs were not run.
    stranded_reason: str = ""
    targets: dict[str, TargetStats] = field(default_factory=dict)
    manifest: Path | None = None
    #: ``cost.cost_summary`` at the end of the run.
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stranded


@dataclass
class _Pending:
    job: Job
    attempts: int = 0
    tried: set[str] = field(default_factory=set)


class BatchRunner:
    """Runs jobs on targets until each is done, failed for good, or stranded."""

    def __init__(self, jobs: list[Job], targets: list[Target], out_dir: Path,
                 build_prompt: Callable[[Job], dict[str, Any]], *, node_types: set[str] | None = None,
                 max_attempts: int = 3, on_event: Callable[[BatchEvent], None] | None = None,
                 manifest_extra: dict[str, Any] | None = None, rates: dict[str, Rate] | None = None,
                 clock: Callable[[], float] = time.monotonic, workflow: str | None = None) -> None:
        self.jobs = jobs
        self.targets = targets
        self.out_dir = out_dir
        self.build_prompt = build_prompt
        self.node_types = node_types or set()
        self.max_attempts = max_attempts
        self.on_event = on_event or (lambda event: None)
        self.manifest_extra = manifest_extra or {}
        #: Prices of the targets that bill (pods, endpoints), by target name.
        self.rates = rates or {}
        self._clock = clock
        #: Digest of the workflow the jobs vary; a folder holding another one's batch is refused.
        self.workflow = workflow
        self.journal = Journal(out_dir)
        self.stats = {t.name: TargetStats(t.name) for t in targets}
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._failed: dict[str, str] = {}
        self._remaining = 0
        self._all_settled = asyncio.Event()
        self._live: set[str] = set()
        self._cancelled = False

    def _emit(self, kind: str, job: str | None = None, target: str | None = None, message: str = "") -> None:
        try:
            self.on_event(BatchEvent(kind, job, target, message))
        except Exception:
            # A broken listener (UI, CLI printer) must not stop the jobs.
            _log.exception("batch event listener failed on %s", kind)

    async def run(self) -> BatchResult:
        """Run every job not done yet. Raises ``BatchFolderError`` (before any job runs) when the
        output folder is a file, is held by another run, or holds another workflow's batch."""
        with BatchLock(self.out_dir):
            self.journal = Journal(self.out_dir)
            if self.workflow is not None:
                self.journal.claim(self.workflow)
            return await self._run_locked()

    async def _run_locked(self) -> BatchResult:
        wanted = {job.id for job in self.jobs}
        todo = [job for job in self.jobs if job.id not in self.journal.done]
        for job in todo:
            self._queue.put_nowait(_Pending(job))
        self._remaining = len(todo)
        usable = await self._usable_targets()
        workers = [
            asyncio.create_task(self._worker(target), name=f"batch:{target.name}:{slot}")
            for target in usable
            for slot in range(target.slots)
        ]
        settled = asyncio.ensure_future(self._all_settled.wait())
        try:
            # Also ends when every worker has stopped, so a worker that died cannot leave us waiting.
            while self._remaining and not settled.done() and any(not w.done() for w in workers):
                await asyncio.wait([settled, *(w for w in workers if not w.done())],
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            settled.cancel()
            # Also when run() itself is cancelled (the app quits): a worker left behind would
            # fail on its closed client later, as an exception no one retrieves.
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        stranded = []
        while not self._queue.empty():
            stranded.append(self._queue.get_nowait().job.id)
        reason = self._stranded_reason() if stranded else ""
        records = [r for r in self.journal.done.values() if r.job in wanted]
        cost = self.cost()
        extra = {**self.manifest_extra, "failed": self._failed, "stranded": stranded, "cost": cost}
        if reason:
            extra["stranded_reason"] = reason
        if self.workflow is not None:
            extra["workflow_digest"] = self.workflow
        try:
            manifest: Path | None = await asyncio.to_thread(write_manifest, self.out_dir, records, extra)
        except OSError as exc:
            _log.warning("cannot write the manifest in %s: %s", self.out_dir, exc)
            manifest = None
        return BatchResult(records, dict(self._failed), stranded, reason, self.stats, manifest, cost)

    def _stranded_reason(self) -> str:
        if self._cancelled:
            return "interrupted"
        gone = {name: s.down for name, s in self.stats.items() if s.down}
        if not gone:
            return "no target could take them"
        return "every target left: " + "; ".join(f"{name}: {why}" for name, why in gone.items())

    def cost(self) -> dict[str, Any]:
        """What the batch has cost so far on the targets with a price (see ``cost.cost_summary``)."""
        metered = {t.name: t for t in self.targets if isinstance(t, Metered)}
        return cost_summary(self.rates, self.stats, self._clock(), metered)

    async def aclose(self) -> None:
        """Close every target's connections (after the run)."""
        await asyncio.gather(*(t.aclose() for t in self.targets), return_exceptions=True)

    async def cancel(self) -> None:
        """Stop the batch: cancel what targets are running; finished jobs stay recorded."""
        self._cancelled = True
        await asyncio.gather(*(t.cancel() for t in self.targets), return_exceptions=True)
        self._all_settled.set()

    async def _usable_targets(self) -> list[Target]:
        answers = await asyncio.gather(*(t.check(self.node_types) for t in self.targets), return_exceptions=True)
        usable = []
        for target, answer in zip(self.targets, answers):
            if isinstance(answer, asyncio.CancelledError):
                raise answer
            reason = _describe(answer) if isinstance(answer, BaseException) else answer
            if reason is None:
                usable.append(target)
                self._live.add(target.name)
            else:
                self.stats[target.name].down = reason
                self._emit("target_excluded", target=target.name, message=reason)
        return usable

    def _settle_one(self) -> None:
        self._remaining -= 1
        if self._remaining <= 0:
            self._all_settled.set()

    async def _worker(self, target: Target) -> None:
        stats = self.stats[target.name]
        while target.name in self._live:
            pending = await self._queue.get()
            if target.name not in self._live:
                self._queue.put_nowait(pending)
                return
            if target.name in pending.tried and len(self._live - pending.tried) > 0:
                # Someone else has not tried this job yet: let them.
                self._queue.put_nowait(pending)
                await asyncio.sleep(0.05)
                continue
            pending.attempts += 1
            self._emit("started", pending.job.id, target.name)
            started = self._clock()
            stats.job_started(started)
            try:
                outputs = await target.run(self.build_prompt(pending.job))
            except TargetFailed as exc:
                stats.job_ended(started, self._clock())
                self._on_failure(target, pending, exc)
                continue
            except asyncio.CancelledError:
                # The batch is ending (cancel, or no live target left): the job
                # is not done, so it must show up as stranded, not vanish.
                stats.job_ended(started, self._clock())
                self._queue.put_nowait(pending)
                raise
            except Exception as exc:
                # Not a machine failing (a prompt that cannot be sent, an answer of a shape
                # nobody expected): another target would fail the same way.
                stats.job_ended(started, self._clock())
                self._fail(pending, target.name, _describe(exc))
                continue
            stats.job_ended(started, self._clock())
            try:
                await self._save(pending, target.name, outputs, round(self._clock() - started, 3))
            except Exception as exc:
                self._fail(pending, target.name, f"its outputs could not be saved in {self.out_dir}: {_describe(exc)}")
                continue
            stats.done += 1
            stats.failures = 0
            self._emit("done", pending.job.id, target.name)
            self._settle_one()

    async def _save(self, pending: _Pending, target: str, outputs: list[Output], duration_s: float) -> None:
        """Write a job's files and journal it, in a thread: each write is fsynced and a slow
        disk must not stall the UI. A cancel that arrives meanwhile waits for the write, so
        a job whose files reached the folder is never redone on resume."""
        def write() -> None:
            files: list[str] = []
            try:
                for i, output in enumerate(outputs):
                    name = f"{pending.job.id}_{i}{output_suffix(output.name)}"
                    write_output(self.out_dir, name, output.data)
                    files.append(name)
            except BaseException:
                # A job is all its files or none: a rerun must not find half of them.
                for name in files:
                    (self.out_dir / name).unlink(missing_ok=True)
                raise
            self.journal.record_done(JobRecord(
                job=pending.job.id, index=pending.job.index, params=pending.job.describe(),
                target=target, duration_s=duration_s, files=files, attempts=pending.attempts,
            ))

        saving = asyncio.ensure_future(asyncio.to_thread(write))
        try:
            await asyncio.shield(saving)
        except asyncio.CancelledError:
            await saving
            raise

    def _fail(self, pending: _Pending, target: str, reason: str) -> None:
        """The job is over, failed for good, with ``reason``."""
        self._record_failure(pending, target, reason)
        self._failed[pending.job.id] = reason
        self._emit("failed", pending.job.id, target, reason)
        self._settle_one()

    def _record_failure(self, pending: _Pending, target: str, reason: str) -> None:
        try:
            self.journal.record_failure(pending.job.id, target, reason, pending.attempts)
        except OSError as exc:
            # The journal only remembers failures for the record; the result still carries them.
            _log.warning("cannot journal a failure in %s: %s", self.out_dir, exc)

    def _on_failure(self, target: Target, pending: _Pending, exc: TargetFailed) -> None:
        stats = self.stats[target.name]
        pending.tried.add(target.name)
        if not exc.refused:
            stats.failures += 1
        # A failure counts against the job only once per target: a dying
        # target failing the same job twice says nothing about the job. A job every
        # live target refused has nowhere left to go (one bad grid value must not take
        # a healthy server, and every other job with it, out of the batch).
        if (not exc.retry or len(pending.tried) >= self.max_attempts
                or (exc.refused and not self._live - pending.tried)):
            self._fail(pending, target.name, str(exc))
        else:
            self._record_failure(pending, target.name, str(exc))
            self._emit("retry", pending.job.id, target.name, str(exc))
            self._queue.put_nowait(pending)
        if exc.retry and not exc.refused and stats.failures >= TARGET_DOWN_AFTER:
            stats.down = str(exc)
            self._live.discard(target.name)
            self._emit("target_down", target=target.name, message=str(exc))
            if not self._live:
                self._all_settled.set()


def output_suffix(name: str) -> str:
    """The extension a saved output keeps: the server's when it is a plain one (``.png``,
    ``.webm``), else ``.bin``; a name with NUL bytes or a 300-character extension must
    not decide what the file system is asked to create."""
    suffix = Path(name.replace("\0", "")).suffix if isinstance(name, str) else ""
    if not suffix:
        return ".png"
    return suffix if _PLAIN_SUFFIX.fullmatch(suffix) else ".bin"


def _describe(exc: BaseException) -> str:
    """One line for an exception nobody planned for: its type and message, no traceback."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
