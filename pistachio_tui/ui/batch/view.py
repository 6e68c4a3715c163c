"""The Batch view: one fleet batch's jobs and targets, live from ``BatchRunner`` events.

The view is given a factory that builds the runner (jobs, targets, output folder)
around the view's event callback — at construction or later with
:meth:`BatchView.set_batch`; it starts and cancels the run and draws the
events. Jobs already in the batch's journal show as done from the start, so a
resumed batch reads the same as an uninterrupted one. Targets with a price
(pods, serverless endpoints) show what the batch has cost on them so far.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from pistachio_tui.config import Settings
from pistachio_tui.fleet.contact_sheet import make_contact_sheet
from pistachio_tui.fleet.dispatch import BatchEvent, BatchResult, BatchRunner
from pistachio_tui.fleet.journal import BatchFolderError, Journal
from pistachio_tui.fleet.spec import Job
from pistachio_tui.format import duration, money
from pistachio_tui.ui.format import short_path
from pistachio_tui.ui.widgets.filter_table import FilterTable
from pistachio_tui.ui.widgets.status_line import StatusLine

COMMANDS: list[tuple[str, str, str]] = [
    ("Batch: start or resume", "Run the loaded batch; jobs already done are skipped", "start_batch"),
    ("Batch: cancel", "Cancel the running batch; finished jobs stay recorded", "cancel_batch"),
]

#: Job states in the order the summary line lists them.
JOB_STATES = ("queued", "running", "done", "failed", "stranded")
_STATE_STYLE = {"queued": "dim", "running": "bold cyan", "done": "green", "failed": "bold red",
                "stranded": "yellow"}

RunnerFactory = Callable[[Callable[[BatchEvent], None]], BatchRunner]


@dataclass
class JobRow:
    """What the view knows about one job."""

    job: Job
    state: str = "queued"
    target: str = ""
    note: str = ""


@dataclass
class TargetRow:
    """What the view knows about one target: jobs it finished, holds, and whether it left."""

    name: str
    done: int = 0
    running: int = 0
    down: str | None = None
    excluded: bool = False
    #: Dollars so far; None for a target without a price (a local server).
    cost: float | None = None


def _job_label(job: Job) -> str:
    parts = []
    if job.seed is not None:
        parts.append(f"seed {job.seed}")
    parts += [f"{name}={value}" for name, value in job.params.items()]
    if job.prompt_text:
        parts.append(job.prompt_text)
    return " ".join(parts) or job.id


class BatchView(Vertical):
    """Counts by state, targets with throughput, the job list, start and cancel.

    ``runner_factory(on_event)`` must return a ``BatchRunner`` built with that
    ``on_event``; it is called once per start (a restart resumes from the journal).
    Without one the view waits for :meth:`set_batch`. ``clock`` is for tests
    (throughput and ETA).
    """

    DEFAULT_CSS = ""

    BINDINGS = [
        Binding("s", "start_batch", "Start/resume"),
        Binding("x", "cancel_batch", "Cancel"),
    ]

    #: Seconds between redraws while running, so ETA and cost move between job events.
    TICK = 1.0

    def __init__(self, settings: Settings, runner_factory: RunnerFactory | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.settings = settings
        self._runner_factory = runner_factory
        self._clock = clock
        self.runner: BatchRunner | None = None
        self.result: BatchResult | None = None
        self.jobs: dict[str, JobRow] = {}
        self.targets: dict[str, TargetRow] = {}
        self.out_dir: Path | None = None
        self._started_at: float | None = None
        self._done_this_run = 0

    def compose(self) -> ComposeResult:
        waiting = "No batch running — press s to start" if self._runner_factory else "No batch loaded"
        yield Static(waiting, id="batch-summary")
        targets: DataTable[object] = DataTable(id="batch-targets", cursor_type="none")
        targets.add_columns("Target", "State", "Done", "Running", "Jobs/min", "Cost")
        yield targets
        jobs = FilterTable(id="batch-jobs", zebra_stripes=True)
        jobs.set_columns("#", "State", "Target", "Job", "Note", widths={"State": max(map(len, JOB_STATES))})
        yield jobs
        yield StatusLine("", id="batch-status")

    @property
    def status(self) -> StatusLine:
        return self.query_one("#batch-status", StatusLine)

    @property
    def running(self) -> bool:
        """True while a batch run is in progress."""
        return self.runner is not None and self.result is None

    def counts(self) -> Counter[str]:
        """Jobs per state."""
        return Counter(row.state for row in self.jobs.values())

    def set_batch(self, runner_factory: RunnerFactory, jobs: list[Job], targets: list[str], out_dir: Path) -> None:
        """Show a new batch, not started yet: its jobs (those in the journal as done) and targets."""
        if self.running:
            raise RuntimeError("a batch is running; cancel it before loading another")
        self._runner_factory = runner_factory
        self.runner = None
        self.result = None
        self._started_at = None
        self._show(jobs, targets, out_dir, Journal(out_dir).done)
        left = sum(row.state != "done" for row in self.jobs.values())
        self.status.show(f"{left} of {len(jobs)} jobs to run — press s to start", "info")

    # -- actions -----------------------------------------------------------------

    def action_start_batch(self) -> None:
        if self.running:
            self.status.show("The batch is already running", "warning")
            return
        if self._runner_factory is None:
            self.status.show("No batch loaded yet", "warning")
            return
        self.runner = self._runner_factory(self._on_event)
        self.result = None
        self._show(self.runner.jobs, [t.name for t in self.runner.targets], self.runner.out_dir,
                   self.runner.journal.done)
        self._run(self.runner)

    def action_cancel_batch(self) -> None:
        if not self.running or self.runner is None:
            self.status.show("No batch is running", "warning")
            return
        self.status.show("Cancelling… finished jobs stay recorded", "warning")
        self._cancel(self.runner)

    @work(group="batch-cancel", exit_on_error=False)
    async def _cancel(self, runner: BatchRunner) -> None:
        await runner.cancel()

    @work(exclusive=True, group="batch-run", exit_on_error=False)
    async def _run(self, runner: BatchRunner) -> None:
        self._started_at = self._clock()
        self._done_this_run = 0
        # The summary shows the whole output folder; one status line has room for its name only.
        self.status.show(f"Running {len(runner.jobs)} jobs → {runner.out_dir.name}")
        ticker = self.set_interval(self.TICK, self._redraw)
        try:
            result = await runner.run()
        except BatchFolderError as exc:
            # Another run holds the folder, or it holds another workflow's batch: nothing ran.
            self.status.show(str(exc), "error")
            return
        finally:
            ticker.stop()
            await runner.aclose()
        # The same folder the CLI leaves: files, manifest, contact sheet.
        await asyncio.to_thread(make_contact_sheet, runner.out_dir, result.records)
        self.result = result
        for job_id in result.stranded:
            self._set_job(job_id, "stranded", note="not run; press s to resume")
        for target in self.targets.values():
            target.running = 0
        self._redraw()
        counts = self.counts()
        # The output folder is on the summary line: the manifest is named, not its whole path.
        if result.ok:
            self.status.show(f"All {counts['done']} jobs done — files and manifest.json in the output folder", "ok")
        else:
            self.status.show(f"{counts['done']} done, {counts['failed']} failed, {counts['stranded']} not run "
                             f"(s resumes) — see manifest.json", "error")

    # -- state -------------------------------------------------------------------

    def _show(self, jobs: list[Job], targets: list[str], out_dir: Path, done: dict) -> None:
        self.out_dir = out_dir
        self.jobs = {}
        for job in jobs:
            record = done.get(job.id)
            row = JobRow(job)
            if record is not None:
                row.state, row.target, row.note = "done", record.target, "earlier run"
            self.jobs[job.id] = row
        self.targets = {name: TargetRow(name) for name in targets}
        self.query_one("#batch-jobs", FilterTable).set_rows(
            [(row.job.id, self._job_cells(row)) for row in self.jobs.values()])
        self._redraw()

    def _redraw(self) -> None:
        if self.runner is not None and self.runner.rates:
            costs = self.runner.cost()["targets"]
            for target in self.targets.values():
                target.cost = costs.get(target.name)
        self._draw_summary()
        self._draw_targets()

    def _on_event(self, event: BatchEvent) -> None:
        target = self.targets.get(event.target or "")
        if event.kind == "started" and event.job:
            self._set_job(event.job, "running", event.target or "", "")
            if target is not None:
                target.running += 1
        elif event.kind in ("done", "retry", "failed") and event.job:
            if target is not None:
                target.running = max(target.running - 1, 0)
            if event.kind == "done":
                self._done_this_run += 1
                if target is not None:
                    target.done += 1
                self._set_job(event.job, "done", event.target or "", "")
            elif event.kind == "retry":
                self._set_job(event.job, "queued", "", f"retrying: {event.message}")
            else:
                self._set_job(event.job, "failed", event.target or "", event.message)
        elif event.kind in ("target_down", "target_excluded") and target is not None:
            target.down = event.message
            target.excluded = event.kind == "target_excluded"
            self.status.show(f"{event.target} left the batch: {event.message}", "warning")
        self._redraw()

    def _set_job(self, job_id: str, state: str, target: str = "", note: str = "") -> None:
        row = self.jobs.get(job_id)
        if row is None:
            return
        row.state, row.target, row.note = state, target, note
        self.query_one("#batch-jobs", FilterTable).update_row(job_id, self._job_cells(row))

    @staticmethod
    def _job_cells(row: JobRow) -> list[object]:
        return [str(row.job.index + 1), Text(row.state, style=_STATE_STYLE[row.state]), Text(row.target),
                Text(_job_label(row.job)), Text(row.note)]

    # -- drawing -----------------------------------------------------------------

    def _elapsed(self) -> float | None:
        if self._started_at is None:
            return None
        elapsed = self._clock() - self._started_at
        return elapsed if elapsed > 0 else None

    def eta(self) -> float | None:
        """Seconds until every job is settled at this run's pace; None before the first result."""
        elapsed = self._elapsed()
        counts = self.counts()
        left = counts["queued"] + counts["running"]
        if not self.running or elapsed is None or not self._done_this_run:
            return None
        return left * elapsed / self._done_this_run

    def _draw_summary(self) -> None:
        counts = self.counts()
        line = Text()
        for state in JOB_STATES:
            line.append(f"{state} ", style="dim")
            line.append(str(counts[state]), style=_STATE_STYLE[state] if counts[state] else "dim")
            line.append("  ")
        line.append(f"of {len(self.jobs)}", style="dim")
        if self.running:
            line.append(f"   ETA {duration(self.eta())}")
        priced = [t.cost for t in self.targets.values() if t.cost is not None]
        if priced:
            line.append(f"   cost so far {money(sum(priced), 4)}", style="bold")
        summary = self.query_one("#batch-summary", Static)
        if self.out_dir is not None:
            # One line at any width: the folder's own name is what a person looks for.
            room = summary.content_region.width - len("Output ")
            line.append(f"\nOutput {short_path(self.out_dir, room if room > 10 else None)}", style="dim")
        summary.update(line)

    def on_resize(self) -> None:
        if self.out_dir is not None:
            self._draw_summary()

    def _draw_targets(self) -> None:
        table = self.query_one("#batch-targets", DataTable)
        table.clear()
        elapsed = self._elapsed()
        for target in self.targets.values():
            if target.down is not None:
                label = "excluded" if target.excluded else "down"
                state = Text(f"{label}: {target.down}", style="red")
            else:
                state = Text("working" if target.running else "idle", style="green" if target.running else "dim")
            rate = f"{target.done * 60 / elapsed:.1f}" if elapsed and target.done else "—"
            cost = money(target.cost, 4)
            table.add_row(Text(target.name), state, str(target.done), str(target.running), rate, cost, key=target.name)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            if event.worker.group == "batch-run":
                self.result = BatchResult(records=[])
            self.status.show(f"The batch stopped: {type(error).__name__}: {error}", "error")
