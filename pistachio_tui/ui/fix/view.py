"""The Fix view: take a workflow from "missing nodes and models" to accepted, step by step.

It runs ``comfy.fix.FixFlow`` in a worker and draws its ``FixEvent`` stream:
the four steps (Nodes → Restart → Models → Verify) with their state, one row
per problem (node type, node pack, model file) with what happened to it, the
current download's progress, and a log of everything done. Model sources are
chosen in a dialog when the flow asks. The flow keeps its choices and partial
downloads in the state folder, so starting again after a cancel resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Log, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import ComfyError
from pistachio_tui.config import ConfigError, Settings, get_secret, state_dir
from pistachio_tui.fix.flow import FixEvent, FixFlow, FixOptions, FixOutcome
from pistachio_tui.fix.models_search import ModelCandidate
from pistachio_tui.format import size
from pistachio_tui.ui.remedies import ui_remedy
from pistachio_tui.ui.widgets.status_line import StatusLine
from pistachio_tui.workflow.deps import ModelNeed
from pistachio_tui.workflow.load import Workflow

COMMANDS: list[tuple[str, str, str]] = [
    ("Fix: start / resume", "Install missing nodes, restart, fetch missing models, verify", "start_fix"),
    ("Fix: cancel", "Stop the fix flow; start again later to resume", "cancel_fix"),
    ("Fix: copy manual commands", "Copy the commands for what could not be done automatically", "copy_commands"),
]

#: The steps shown across the top, and which flow steps belong to each.
STEPS = ("Nodes", "Restart", "Models", "Verify")
_STEP_OF = {"nodes": "Nodes", "install": "Nodes", "restart": "Restart", "models": "Models",
            "download": "Models", "validate": "Verify", "done": "Verify"}
_STEP_MARK = {"pending": ("·", "dim"), "active": ("…", "bold cyan"), "ok": ("✓", "green"),
              "failed": ("✗", "bold red")}
_ROW_STYLE = {"ok": "green", "failed": "bold red", "progress": "cyan", "start": "cyan", "waiting": "yellow",
              "choose": "yellow", "info": "", "missing": "yellow"}
#: Lines kept in the log pane.
MAX_LOG_LINES = 2000

FlowClass = Callable[..., FixFlow]


@dataclass
class ProblemRow:
    """One thing being fixed: a missing node type, a node pack, or a model file."""

    kind: str
    item: str
    state: str = "missing"
    detail: str = ""


def _row_kind(event: FixEvent) -> str | None:
    return {"nodes": "node", "install": "pack", "models": "model", "download": "model"}.get(event.step)


def _problems_from_lines(lines: list[str]) -> list[ProblemRow]:
    """Rows from ``Diagnosis.lines()``: "missing node: X", "missing model: folder/name"."""
    rows = []
    for line in lines:
        kind, _, what = line.partition(": ")
        if kind == "missing node":
            rows.append(ProblemRow("node", what))
        elif kind == "missing model":
            rows.append(ProblemRow("model", what.split("/", 1)[1] if "/" in what else what, detail=what))
        else:
            rows.append(ProblemRow("other", what))
    return rows


#: What the model dialog returns when the user cancels the whole fix from it.
CANCEL_FIX = "cancel"


class ChooseModel(ModalScreen[ModelCandidate | str | None]):
    """Pick where a missing model comes from, skip it (Escape), or cancel the fix (x)."""

    BINDINGS = [Binding("escape", "skip", "Skip this model"), Binding("x", "cancel_fix", "Cancel the fix")]

    def __init__(self, need: ModelNeed, candidates: list[ModelCandidate]) -> None:
        super().__init__()
        self.need = need
        self.candidates = candidates

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(f"Source for {self.need.name}"), classes="dialog-title")
            options = [
                Option(Text.assemble((c.filename, "bold"), f"  {c.source}",
                                     (f"  {size(c.size)}" if c.size else ""),
                                     ("  gated" if c.gated else "", "yellow"), f"\n  {c.url}"), id=str(i))
                for i, c in enumerate(self.candidates)
            ]
            options.append(Option("Skip this model", id="skip"))
            yield OptionList(*options, id="choose-options")
            yield Label("Enter picks · Esc skips · x cancels the fix", classes="dialog-hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        chosen = event.option.id
        self.dismiss(None if chosen == "skip" else self.candidates[int(chosen or 0)])

    def action_skip(self) -> None:
        self.dismiss(None)

    def action_cancel_fix(self) -> None:
        self.dismiss(CANCEL_FIX)


class FixView(Vertical):
    """Steps, problems, progress and log of a fix-flow run on one server.

    ``client`` is the server's ``ComfyClient`` (owned by the caller); ``options``
    default to the local ComfyUI folder from ``settings`` and the shared state
    folder (resumable). ``flow_class`` builds the flow (tests pass scripted ones).
    """

    DEFAULT_CSS = ""

    BINDINGS = [
        Binding("s", "start_fix", "Start/resume"),
        Binding("x", "cancel_fix", "Cancel"),
        Binding("c", "copy_commands", "Copy commands"),
    ]

    def __init__(self, settings: Settings, client: ComfyClient, workflow: Workflow, *,
                 options: FixOptions | None = None, flow_class: FlowClass = FixFlow,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.settings = settings
        self.client = client
        self.workflow = workflow
        #: Options built here read the Hugging Face token at each start (it may be set meanwhile).
        self._own_options = options is None
        self.options = options or FixOptions(comfy_dir=settings.comfy_dir, state_dir=state_dir())
        self._flow_class = flow_class
        self.steps: dict[str, str] = dict.fromkeys(STEPS, "pending")
        self.rows: dict[str, ProblemRow] = {}
        self.outcome: FixOutcome | None = None
        self._restart_note = ""
        self._worker: Worker | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="fix-title")
        yield Static(self._steps_line(), id="fix-steps")
        table: DataTable[str | Text] = DataTable(id="fix-problems", cursor_type="row")
        table.add_column("Kind", key="kind")
        table.add_column("Item", key="item")
        table.add_column("State", key="state")
        table.add_column("Detail", key="detail")
        yield table
        yield ProgressBar(id="fix-progress", show_eta=False)
        yield Log(id="fix-log", max_lines=MAX_LOG_LINES)
        yield StatusLine("Press s to start", id="fix-status")

    def on_mount(self) -> None:
        self.query_one("#fix-progress").display = False

    def _title(self) -> Text:
        return Text.assemble(("Fix ", "dim"), (self.workflow.name or "workflow", "bold"), (" on ", "dim"),
                             self.client.shown_url)

    @property
    def status(self) -> StatusLine:
        return self.query_one("#fix-status", StatusLine)

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_running

    # -- actions -----------------------------------------------------------------

    def action_start_fix(self) -> None:
        if self.running:
            self.status.show("The fix is already running", "warning")
            return
        if self._own_options:
            # The ComfyUI folder may have been set since the view opened (the remedy for its absence).
            self.options.comfy_dir = self.settings.comfy_dir
            try:
                self.options.hf_token = get_secret("HF_TOKEN")
            except ConfigError as exc:
                self.status.show(f"{exc} — gated Hugging Face models will fail", "warning")
        self.outcome = None
        self.steps = dict.fromkeys(STEPS, "pending")
        self._restart_note = ""
        self._draw_steps()
        self._worker = self._run()

    def action_cancel_fix(self) -> None:
        if not self.running or self._worker is None:
            self.status.show("Nothing is running", "warning")
            return
        self._worker.cancel()
        if isinstance(self.app.screen, ChooseModel):
            self.app.pop_screen()
        self._log("cancelled by you — press s to resume with the same choices")
        self.status.show("Cancelled. Press s to resume: choices and partial downloads are kept", "warning")

    def action_copy_commands(self) -> None:
        commands = self.outcome.commands if self.outcome else []
        if not commands:
            self.status.show("No manual commands to copy", "warning")
            return
        self.app.copy_to_clipboard("\n".join(commands))
        self.status.show(f"Copied {len(commands)} command(s)", "ok")

    @work(exclusive=True, group="fix-run", exit_on_error=False)
    async def _run(self) -> None:
        flow = self._flow_class(self.client, self.workflow, self.options, emit=self._on_event,
                                chooser=self._choose)
        self.status.show("Checking what the workflow needs…")
        try:
            outcome = await flow.run()
        except ComfyError as exc:
            self.status.show(exc.message, "error")
            self._log(f"stopped: {exc.message}")
            return
        self._finish(outcome)

    async def _choose(self, need: ModelNeed, candidates: list[ModelCandidate]) -> ModelCandidate | None:
        """The flow's chooser: ask in a dialog; no candidates means nothing to ask."""
        if not candidates:
            return None
        answer: asyncio.Future[ModelCandidate | None] = asyncio.get_running_loop().create_future()

        def chosen(choice: ModelCandidate | str | None) -> None:
            if choice == CANCEL_FIX:
                self.action_cancel_fix()
            elif not answer.done():
                answer.set_result(choice if isinstance(choice, ModelCandidate) else None)

        self.app.push_screen(ChooseModel(need, candidates), chosen)
        return await answer

    # -- events ------------------------------------------------------------------

    def _on_event(self, event: FixEvent) -> None:
        self._log(f"[{event.step}] {event.item + ': ' if event.item else ''}{event.message}")
        step = _STEP_OF.get(event.step)
        if step is not None:
            self._advance(step, event)
        if event.step == "diagnose" and event.state in ("ok", "failed"):
            for row in _problems_from_lines(event.data.get("problems", [])):
                key = f"{row.kind}:{row.item}"
                if key not in self.rows:
                    self._put_row(key, row)
        kind = _row_kind(event)
        if kind is not None and event.item:
            key = f"{kind}:{event.item}"
            row = self.rows.get(key) or ProblemRow(kind, event.item)
            row.state, row.detail = event.state, event.message
            self._put_row(key, row)
        if event.step == "restart" and event.state == "waiting":
            self._restart_note = f" {event.data.get('elapsed', 0):.0f} s"
        self._progress(event)
        self._draw_steps()

    def _advance(self, step: str, event: FixEvent) -> None:
        index = STEPS.index(step)
        # Reaching a later step settles the earlier ones that were under way.
        for earlier in STEPS[:index]:
            if self.steps[earlier] == "active":
                self.steps[earlier] = self._settled(earlier)
        if event.step == "done":
            self.steps[step] = "ok" if event.state == "ok" else "failed"
        elif event.step == "restart" and event.state == "ok":
            self.steps[step] = "ok"
        elif event.state == "failed" and event.item is None:
            self.steps[step] = "failed"
        elif self.steps[step] not in ("failed",):
            self.steps[step] = "active"

    def _settled(self, step: str) -> str:
        kinds = {"Nodes": ("node", "pack"), "Models": ("model",)}.get(step, ())
        # A row still under way when its step ends was cut short: that is no success either.
        unfinished = ("failed", "start", "progress", "waiting", "choose")
        failed = any(r.state in unfinished for r in self.rows.values() if r.kind in kinds)
        return "failed" if failed else "ok"

    def _progress(self, event: FixEvent) -> None:
        bar = self.query_one("#fix-progress", ProgressBar)
        if event.step == "download" and event.state == "progress" and event.data.get("total"):
            bar.display = True
            bar.update(total=event.data["total"], progress=event.data.get("done", 0))
        elif event.step == "download" and event.state in ("ok", "failed"):
            bar.display = False

    def _finish(self, outcome: FixOutcome) -> None:
        self.outcome = outcome
        self.query_one("#fix-progress").display = False
        for step, state in self.steps.items():
            if state == "active":
                self.steps[step] = self._settled(step)
        self._draw_steps()
        saved = f"; corrected copy saved as {outcome.saved}" if outcome.saved is not None else ""
        if outcome.saved is not None:
            self._log(f"corrected workflow (model names the server uses): {outcome.saved}")
        if outcome.accepted:
            self.status.show(f"The server accepted the workflow (prompt {outcome.prompt_id}){saved}", "ok")
            return
        for line in outcome.remaining:
            self._log(f"to do: {line}")
        for need in outcome.needs:
            self._log(f"or: {ui_remedy(need, self.settings.path)}")
        for command in outcome.commands:
            self._log(f"$ {command}")
        extra = " — c copies the commands" if outcome.commands else ""
        self.status.show(f"Still not runnable: {len(outcome.remaining)} thing(s) to do by hand{extra}", "error")

    # -- drawing -----------------------------------------------------------------

    def _put_row(self, key: str, row: ProblemRow) -> None:
        self.rows[key] = row
        table = self.query_one("#fix-problems", DataTable)
        cells = [row.kind, Text(row.item), Text(row.state, style=_ROW_STYLE.get(row.state, "")), Text(row.detail)]
        if key in table.rows:
            for column, value in zip(("kind", "item", "state", "detail"), cells):
                table.update_cell(key, column, value, update_width=True)
        else:
            table.add_row(*cells, key=key)

    def _steps_line(self) -> Text:
        line = Text()
        for i, step in enumerate(STEPS):
            if i:
                line.append(" → ", style="dim")
            mark, style = _STEP_MARK[self.steps[step]]
            line.append(f"{mark} {step}", style=style)
            if step == "Restart" and self.steps[step] == "active":
                line.append(self._restart_note, style="yellow")
        return line

    def _draw_steps(self) -> None:
        self.query_one("#fix-steps", Static).update(self._steps_line())

    def _log(self, line: str) -> None:
        self.query_one("#fix-log", Log).write_line(line)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.status.show(f"The fix stopped: {type(error).__name__}: {error}", "error")
