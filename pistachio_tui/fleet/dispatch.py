"""Spread a batch's jobs over targets, retry elsewhere on failure, record results.

There is no scheduler of our own: each target gets at most ``slots`` jobs at a
time and pulls the next one when a slot frees, so faster or emptier targets
take more of the batch. A job that a target failed to deliver goes back in the
pool for another target.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pistachio_tui.fleet.cost import Metered, Rate, cost_summary
from pistachio_tui.fleet.journal import JobRecord, Journal, write_manifest, write_output
from pistachio_tui.fleet.spec import Job
from pistachio_tui.fleet.targets import Output, Target, TargetFailed

#: Failures in a row after which a target is taken out of the batch.
TARGET_DOWN_AFTER = 2


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
    #: Jobs never run because every target left the batch.
    stranded: list[str] = field(default_factory=list)
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
                 clock: Callable[[], float] = time.monotonic) -> None:
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
        self.journal = Journal(out_dir)
        self.stats = {t.name: TargetStats(t.name) for t in targets}
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._failed: dict[str, str] = {}
        self._remaining = 0
        self._all_settled = asyncio.Event()
        self._live: set[str] = set()

    def _emit(self, kind: str, job: str | None = None, target: str | None = None, message: str = "") -> None:
        self.on_event(BatchEvent(kind, job, target, message))

    async def run(self) -> BatchResult:
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
        if self._remaining and workers:
            await self._all_settled.wait()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        stranded = []
        while not self._queue.empty():
            stranded.append(self._queue.get_nowait().job.id)
        records = list(self.journal.done.values())
        cost = self.cost()
        manifest = await asyncio.to_thread(write_manifest, self.out_dir, records, {
            **self.manifest_extra, "failed": self._failed, "stranded": stranded, "cost": cost})
        return BatchResult(records, dict(self._failed), stranded, self.stats, manifest, cost)

    def cost(self) -> dict[str, Any]:
        """What the batch has cost so far on the targets with a price (see ``cost.cost_summary``)."""
        metered = {t.name: t for t in self.targets if isinstance(t, Metered)}
        return cost_summary(self.rates, self.stats, self._clock(), metered)

    async def aclose(self) -> None:
        """Close every target's connections (after the run)."""
        await asyncio.gather(*(t.aclose() for t in self.targets), return_exceptions=True)

    async def cancel(self) -> None:
        """Stop the batch: cancel what targets are running; finished jobs stay recorded."""
        await asyncio.gather(*(t.cancel() for t in self.targets), return_exceptions=True)
        self._all_settled.set()

    async def _usable_targets(self) -> list[Target]:
        reasons = await asyncio.gather(*(t.check(self.node_types) for t in self.targets))
        usable = []
        for target, reason in zip(self.targets, reasons):
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
            stats.job_ended(started, self._clock())
            stats.done += 1
            stats.failures = 0
            await self._save(pending, target.name, outputs, round(self._clock() - started, 3))
            self._emit("done", pending.job.id, target.name)
            self._settle_one()

    async def _save(self, pending: _Pending, target: str, outputs: list[Output], duration_s: float) -> None:
        """Write a job's files and journal it, in a thread: each write is fsynced and a slow
        disk must not stall the UI. A cancel that arrives meanwhile waits for the write, so
        a job whose files reached the folder is never redone on resume."""
        def write() -> None:
            files = []
            for i, output in enumerate(outputs):
                name = f"{pending.job.id}_{i}{Path(output.name).suffix or '.png'}"
                write_output(self.out_dir, name, output.data)
                files.append(name)
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

    def _on_failure(self, target: Target, pending: _Pending, exc: TargetFailed) -> None:
        stats = self.stats[target.name]
        stats.failures += 1
        pending.tried.add(target.name)
        self.journal.record_failure(pending.job.id, target.name, str(exc), pending.attempts)
        # A failure counts against the job only once per target: a dying
        # target failing the same job twice says nothing about the job.
        if not exc.retry or len(pending.tried) >= self.max_attempts:
            self._failed[pending.job.id] = str(exc)
            self._emit("failed", pending.job.id, target.name, str(exc))
            self._settle_one()
        else:
            self._emit("retry", pending.job.id, target.name, str(exc))
            self._queue.put_nowait(pending)
        if exc.retry and stats.failures >= TARGET_DOWN_AFTER:
            stats.down = str(exc)
            self._live.discard(target.name)
            self._emit("target_down", target=target.name, message=str(exc))
            if not self._live:
                self._all_settled.set()
