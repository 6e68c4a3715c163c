"""History screen: search the prompt journal (every prompt on every server, kept on disk) and queue one again.

The journal outlives the servers: a prompt a restart made ComfyUI forget is
listed here as lost, and ``r`` queues its kept API prompt on the active server.
Searches run in a thread (SQLite blocks); every text read from the journal is
shown as plain text, so names such as ``[Pony] x.safetensors`` keep their brackets.
"""

from __future__ import annotations

import asyncio
import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, Static

from pistachio_tui.comfy.errors import ComfyError
from pistachio_tui.comfy.session import ServerSession, SessionUpdate, UpdateKind
from pistachio_tui.journal import Journal, JournalEntry, JournalError
from pistachio_tui.ui.base import PistachioScreen
from pistachio_tui.ui.format import duration, status_text
from pistachio_tui.ui.history.query import QueryError, parse_query

#: Rows one search shows: enough to scroll through, few enough to draw at once.
RESULT_LIMIT = 200
#: The table's prompt and workflow columns are cut to these many characters, so that at 80 columns a row
#: shows when, how it went, what ran, how long and its outputs (the detail shows the whole text; the seed
#: and the server, also in the detail, come last).
PROMPT_WIDTH = 26
WORKFLOW_WIDTH = 16
#: After a prompt finishes, the recorder writes it in a thread: search again a little later.
RESEARCH_DELAY_S = 0.5


def _when(entry: JournalEntry) -> float | None:
    return entry.queued_at or entry.started_at or entry.finished_at


def clock(epoch: float | None, *, long: bool = False) -> str:
    if epoch is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S" if long else "%m-%d %H:%M", time.localtime(epoch))


def one_line(text: str | None, width: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _row_key(entry: JournalEntry) -> str:
    return f"{entry.server} {entry.prompt_id}"


class HistoryScreen(PistachioScreen):
    """Every prompt the journal kept, searchable; re-queue one on the active server."""

    MODE = "history"
    CSS_PATH = "screen.tcss"
    SUMMARY = "Prompt journal of every server: search by words, seed:, server:, status:, since:; r queues again"
    #: The results, not the search box: number keys keep switching screens until "/" is pressed.
    AUTO_FOCUS = "#history-results"
    BINDINGS = [
        Binding("slash", "focus_search", "Search", key_display="/"),
        Binding("escape", "leave_search", "Results", show=False),
        Binding("r", "requeue", "Queue again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[str, JournalEntry] = {}
        self._research_timer_set = False

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="words  seed:N  server:NAME  status:lost  since:YYYY-MM-DD", id="history-search")
        yield Static("", id="history-summary")
        yield DataTable(id="history-results", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="history-detail"):
            yield Static("Select a prompt.", id="history-detail-text")

    def on_mount(self) -> None:
        # What ran, when and how it went first: at 80 columns the seed and the server (both in the
        # detail below) are the ones off to the right.
        self.query_one("#history-results", DataTable).add_columns(
            "Time", "Status", "Workflow", "Prompt", "Took", "Out", "Seed", "Server")
        self.search()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.search()

    def refresh_view(self, update: SessionUpdate | None) -> None:
        # Finished prompts (and the lost ones) change what the journal holds; new history arrives in bursts,
        # so one search follows a burst instead of one per update.
        if update is not None and update.kind in (UpdateKind.FINISHED, UpdateKind.HISTORY) and not self._research_timer_set:
            self._research_timer_set = True
            self.set_timer(RESEARCH_DELAY_S, self._research)

    def _research(self) -> None:
        self._research_timer_set = False
        self.search()

    # -- searching ---------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        self.search()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_leave_search()

    def search(self) -> None:
        servers = {config.name: config.url for config in self.papp.settings.servers}
        typed = self.query_one("#history-search", Input).value
        try:
            query = parse_query(typed, servers)
        except QueryError as exc:
            self._say(Text(str(exc), style="yellow"))
            return
        self._run_search(query.kwargs())

    async def _journal(self) -> Journal | None:
        """The app opens the journal in the background at start: wait a moment for it."""
        for _ in range(50):
            if self.papp.journal is not None:
                return self.papp.journal.journal
            await asyncio.sleep(0.05)
        return None

    @work(exclusive=True, group="history-search")
    async def _run_search(self, kwargs: dict) -> None:
        journal = await self._journal()
        if journal is None:
            self._say(Text("The prompt journal is not open (see the warning at start-up).", style="yellow"))
            return
        try:
            found = await asyncio.to_thread(journal.search, limit=RESULT_LIMIT, **kwargs)
        except JournalError as exc:
            self._say(Text(str(exc), style="red"))
            return
        self._fill(found)

    def _say(self, message: Text) -> None:
        self.query_one("#history-summary", Static).update(message)

    def _fill(self, found: list[JournalEntry]) -> None:
        table = self.query_one("#history-results", DataTable)
        selected = self._selected_key()
        names = {config.url: config.name for config in self.papp.settings.servers}
        self.entries = {_row_key(e): e for e in found}
        table.clear()
        for key, entry in self.entries.items():
            table.add_row(
                clock(_when(entry)), status_text(entry.status), Text(one_line(entry.workflow, WORKFLOW_WIDTH) or "—"),
                Text(one_line(entry.positive, PROMPT_WIDTH)), duration(entry.duration), str(len(entry.outputs)),
                "—" if entry.seed is None else str(entry.seed), Text(names.get(entry.server, entry.server)), key=key)
        keys = list(self.entries)
        if selected in keys:
            table.move_cursor(row=keys.index(selected))
        more = " (the newest; narrow the search for older ones)" if len(found) >= RESULT_LIMIT else ""
        self._say(Text(f"{len(found)} prompt(s), newest first{more}" if found else "No prompt matches.",
                       style="dim"))
        self._show_detail(self.selected())

    # -- selection and detail ------------------------------------------------

    def _selected_key(self) -> str | None:
        table = self.query_one("#history-results", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0))
        return row_key.value

    def selected(self) -> JournalEntry | None:
        key = self._selected_key()
        return self.entries.get(key) if key else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(self.selected())

    def _show_detail(self, entry: JournalEntry | None) -> None:
        text = self.query_one("#history-detail-text", Static)
        if entry is None:
            text.update("Select a prompt.")
            return
        names = {config.url: config.name for config in self.papp.settings.servers}
        name = names.get(entry.server)
        detail = Text.assemble(status_text(entry.status), "  ", (entry.prompt_id, "bold"), "  on ",
                               f"{name} ({entry.server})" if name else entry.server)
        lines = [
            detail,
            Text(f"queued {clock(entry.queued_at, long=True)}  started {clock(entry.started_at, long=True)}  "
                 f"took {duration(entry.duration)}"),
            Text.assemble(("Workflow ", "dim"), entry.workflow or "—", ("  seed ", "dim"),
                          "—" if entry.seed is None else str(entry.seed)),
            Text.assemble(("Prompt ", "dim"), entry.positive or "—"),
            Text.assemble(("Models and LoRAs ", "dim"), ", ".join(entry.models) or "—"),
            Text.assemble(("Outputs ", "dim"), ", ".join(entry.outputs) or "none"),
        ]
        if entry.error:
            lines.append(Text.assemble(("Error ", "bold red"), entry.error))
        if not entry.prompt_kept:
            lines.append(Text("Its API prompt was not kept: it cannot be queued again from here.", style="dim"))
        text.update(Text("\n").join(lines))

    # -- actions ---------------------------------------------------------------

    def action_focus_search(self) -> None:
        self.query_one("#history-search", Input).focus()

    def action_leave_search(self) -> None:
        self.query_one("#history-results", DataTable).focus()

    def action_requeue(self) -> None:
        entry = self.selected()
        if entry is None:
            self.notify("Pick a prompt in the list first.", severity="warning")
            return
        if not entry.prompt_kept:
            self.notify(f"{entry.prompt_id[:8]} cannot be queued again: the journal did not keep its API prompt "
                        "(Pistachio saw it only after it had left the queue).", severity="warning")
            return
        session = self.require_session()
        if session is not None:
            self._requeue(session, entry)

    @work(group="history-requeue")
    async def _requeue(self, session: ServerSession, entry: JournalEntry) -> None:
        journal = await self._journal()
        try:
            prompt = await asyncio.to_thread(journal.prompt_of, entry) if journal is not None else entry.prompt
            state = await session.submit(prompt)
        except JournalError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        except ComfyError as exc:
            self.notify(exc.message, severity="error", timeout=8)
            return
        self.notify(f"{entry.prompt_id[:8]} queued again on {session.name} as {state.prompt_id}")
