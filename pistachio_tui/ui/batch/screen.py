"""Batch screen: load a batch (a batch file, or a seed sweep of the open workflow) and run it on the fleet.

The targets are the app's configured servers plus the serverless endpoints a
batch file lists. Everything between the file and the runner is
``fleet.build.prepare_batch``, the same code ``pistachio batch`` runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static

from pistachio_tui.comfy.session import SessionUpdate
from pistachio_tui.config import ConfigError
from pistachio_tui.fleet.build import BatchSetupError, NoReachableTarget, batches_dir, prepare_batch, quick_sweep
from pistachio_tui.fleet.resume import load_resume_folder, write_resume_file
from pistachio_tui.fleet.spec import BatchSpec, BatchSpecError, load_batch_file
from pistachio_tui.remedies import needs_of
from pistachio_tui.ui.base import ViewScreen
from pistachio_tui.ui.batch.view import COMMANDS, BatchView
from pistachio_tui.ui.format import esc, short_path
from pistachio_tui.ui.remedies import ui_remedy
from pistachio_tui.ui.state import OpenWorkflow
from pistachio_tui.ui.widgets.filter_table import FilterTable
from pistachio_tui.workflow.errors import WorkflowError
from pistachio_tui.workflow.seeds import SEED_MODES

#: Jobs a quick sweep may have: more belongs in a batch file.
MAX_SWEEP = 1000


class BatchScreen(ViewScreen):
    """One batch over every configured server (and the endpoints a batch file names)."""

    MODE = "batch"
    CSS_PATH = ["screen.tcss", "view.tcss"]
    SUMMARY = "One batch over all servers and endpoints: load, start, cancel, resume, cost"
    VIEW_CLASS = BatchView
    VIEW_COMMANDS = [
        ("Batch: open a batch file", "TOML, the same format as pistachio batch (o)", "screen.open_file"),
        ("Batch: seed sweep of the open workflow", "count and seed mode on every server (w)", "screen.sweep"),
        *COMMANDS,
    ]
    BINDINGS = [
        Binding("o", "open_file", "Open file"),
        Binding("w", "sweep", "Sweep"),
        Binding("escape", "back_to_jobs", "Jobs", show=False),
    ]
    #: Not an input: the number keys must keep switching screens.
    AUTO_FOCUS = "#batch-jobs"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="batch-load"):
            with Horizontal(classes="batch-row"):
                yield Label("Batch file", classes="batch-label")
                yield Input(placeholder="a batch .toml, or a batch's output folder to resume; Enter",
                            id="batch-file", compact=True)
            with Horizontal(classes="batch-row"):
                yield Label("Sweep", classes="batch-label")
                yield Input("4", id="sweep-count", type="integer", compact=True, tooltip="jobs in the sweep")
                yield Select([(f"{mode} seed", mode) for mode in SEED_MODES], value="random", allow_blank=False,
                             id="sweep-mode", compact=True)
                yield Static("", id="sweep-source")
            yield Static("", id="batch-hint")
        yield from super().compose_body()

    def make_view(self) -> BatchView:
        return BatchView(self.papp.settings, id="batch-view")

    @property
    def view(self) -> BatchView:
        return self.query_one(BatchView)

    def refresh_view(self, update: SessionUpdate | None) -> None:
        if update is None:
            self._show_sweep_source()
            if self.view.out_dir is None:
                self._how_to_load()

    def _how_to_load(self) -> None:
        servers = ", ".join(self.papp.manager.sessions) or "none yet (add them on Servers, 1)"
        # The folder is cut to the line: a demo's or a pod's data folder is long, and the hint has three lines.
        room = self.query_one("#batch-hint").content_region.width - len("Output:  /<name>, or the file's 'output'")
        folder = short_path(batches_dir(), room if room > 10 else None)
        self._hint(f"o batch file, or output folder to resume · w sweep the open workflow · s start\n"
                   f"Targets: servers {servers} + endpoints the file lists\n"
                   f"Output: {folder}/<name>, or the file's 'output'")

    def _hint(self, text: str, level: str = "info") -> None:
        hint = self.query_one("#batch-hint", Static)
        hint.set_class(level == "error", "-error")
        hint.update(Text(text))

    def on_mount(self) -> None:
        # The open workflow is app state the Workflows screen sets; follow it, never reach into that screen.
        self.watch(self.papp, "open_workflow", self._show_sweep_source)

    def _show_sweep_source(self, opened: OpenWorkflow | None = None) -> None:
        opened = self.papp.open_workflow
        text = (f"of {esc(opened.name)} (open on Workflows)" if opened is not None
                else "open a workflow on Workflows (2) first")
        self.query_one("#sweep-source", Static).update(text)

    # -- actions -----------------------------------------------------------------

    def action_open_file(self) -> None:
        self.query_one("#batch-file", Input).focus()

    def action_sweep(self) -> None:
        self.query_one("#sweep-count", Input).focus()

    def action_back_to_jobs(self) -> None:
        self.query_one("#batch-jobs", FilterTable).focus()

    @on(Input.Submitted, "#batch-file")
    def _file_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self.load_file(event.value)
        self.action_back_to_jobs()

    @on(Input.Submitted, "#sweep-count")
    def _count_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self.load_sweep(event.value)
        # Back to the jobs, so s, x and the number keys work again.
        self.action_back_to_jobs()

    def load_file(self, text: str) -> None:
        """Load the batch file at ``text`` (a path, ``~`` allowed), or resume the batch whose output folder it is."""
        if not text.strip():
            self._error("Type the path of a batch .toml file, then Enter.")
            return
        path = Path(text.strip()).expanduser()
        if path.is_dir():
            # An output folder: the batch that wrote it, resumed (its journal skips the finished jobs).
            self._load(lambda: load_resume_folder(path), f"resume of {path.name}")
        else:
            self._load(lambda: load_batch_file(path), path.name)

    def load_sweep(self, count_text: str) -> None:
        """Load a seed sweep of the workflow open on the Workflows screen."""
        opened = self.papp.open_workflow
        if opened is None:
            self._error("No workflow is open: pick one on Workflows (2), then come back and press w.")
            return
        if not opened.converted:
            self._error("That workflow is not converted yet: open it on Workflows with a server connected.")
            return
        try:
            count = int(count_text or 0)
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_SWEEP:
            self._error(f"A sweep has 1 to {MAX_SWEEP} jobs; for more, write a batch file.")
            return
        try:
            prompt = opened.prompt()
        except (ValueError, WorkflowError) as exc:
            self._error(f"The workflow's form has a bad value: {exc}. Fix it on Workflows (2).")
            return
        mode = str(self.query_one("#sweep-mode", Select).value)
        name = opened.name
        self._load(lambda: quick_sweep(prompt, name, count, mode), f"sweep of {name}")

    def _load(self, make_spec: Callable[[], BatchSpec], label: str) -> None:
        if self.view.running:
            self._error("A batch is running: cancel it (x) before loading another.")
            return
        self._hint(f"Loading {label}…")
        self._prepare(make_spec, label)

    @work(exclusive=True, group="batch-load", exit_on_error=False)
    async def _prepare(self, make_spec: Callable[[], BatchSpec], label: str) -> None:
        servers = [session.config for session in self.papp.manager.sessions.values()]
        try:
            spec = make_spec()
            if not servers and not spec.endpoints:
                raise BatchSetupError("no servers configured: add one on Servers (1), "
                                      "or list serverless endpoints in the batch file")
            prepared = await prepare_batch(spec, servers)
            await asyncio.to_thread(write_resume_file, spec, prepared.out_dir)
        except NoReachableTarget as exc:
            self._error(f"{exc}. Start ComfyUI there, or add a server on Servers (1).")
            return
        except (BatchSpecError, BatchSetupError, ConfigError, OSError) as exc:
            need = needs_of(exc)
            remedy = ui_remedy(need, self.papp.settings.path) if need is not None else "fix it"
            self._error(f"{exc}. To go on, {remedy} and load again.")
            return
        except WorkflowError as exc:
            self._error(f"The workflow cannot make these jobs: {exc}")
            return
        if self.view.running:
            self._error("A batch started meanwhile: cancel it (x) before loading another.")
            return
        self.view.set_batch(prepared.runner, prepared.jobs, prepared.target_names, prepared.out_dir)
        notes = [f"not answering: {', '.join(prepared.unreachable)}"] if prepared.unreachable else []
        notes += prepared.notes
        priced = ", ".join(f"{name} {rate.source}" for name, rate in prepared.rates.items())
        notes += [f"priced: {priced}"] if priced else []
        self._hint(f"Loaded {label}: {len(prepared.jobs)} jobs, {len(prepared.target_names)} target(s) · "
                   f"s start · x cancel\n{' · '.join(notes)}")

    def _error(self, message: str) -> None:
        self._hint(message, "error")
        self.notify(message, title="Batch", severity="error", timeout=8)
