"""Servers screen: health of every configured server, add/edit/remove, the server log."""

from __future__ import annotations

import re

from rich.cells import cell_len
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Input, Log, Static

from pistachio_tui.comfy.errors import ComfyError
from pistachio_tui.comfy.session import ServerSession, SessionUpdate
from pistachio_tui.config import ServerConfig
from pistachio_tui.ui.base import PistachioScreen
from pistachio_tui.ui.format import esc, gib, state_text
from pistachio_tui.ui.widgets.filter_table import FilterTable, cell_text

#: Every column, most essential first; a narrow terminal shows the first few (see ``columns_for``).
COLUMNS = ("Name", "Status", "URL", "Queue", "VRAM free", "ComfyUI", "Device", "RAM free", "Python / torch")
#: Terminal width → how many of COLUMNS fit.
WIDTHS = ((150, 9), (125, 8), (105, 7), (90, 6), (72, 5), (0, 3))
URL_CHARS = 32
LOG_LINES = 2000
LOG_TITLE = "Log — l load, f follow, s search"
FOLLOW_SECONDS = 2.0


def short_device(name: str) -> str:
    """``cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync`` → ``NVIDIA GeForce RTX 4090``."""
    return re.sub(r"^\w+:\d+\s+", "", name).split(" : ")[0][:28]


def columns_for(width: int) -> int:
    return next(count for least, count in WIDTHS if width >= least)


def short_url(url: str) -> str:
    """``http://127.0.0.1:8188`` → ``127.0.0.1:8188``, long ones end in "…" (the line under the table has it whole)."""
    shown = url.split("://", 1)[-1]
    return shown if len(shown) <= URL_CHARS else shown[: URL_CHARS - 1] + "…"


def server_row(session: ServerSession) -> tuple:
    """One cell per COLUMNS entry."""
    stats = session.stats
    url = short_url(session.config.url)
    if stats is None:
        return (session.name, state_text(session.state), url, "—", "—", "—", "—", "—", "—")
    queue = len(session.queue.running) + len(session.queue.pending)
    device = stats.main_device
    torch = stats.pytorch_version.split("+")[0]
    on_gpu = device is not None and device.type != "cpu"
    return (
        session.name, state_text(session.state), url, str(queue),
        # A CPU server's "device memory" is its RAM, already in RAM free: no VRAM to show.
        f"{gib(device.vram_free)} / {gib(device.vram_total)}" if on_gpu and device else "none (CPU)",
        stats.comfyui_version,
        short_device(device.name) if on_gpu and device else "CPU",
        f"{gib(stats.ram_free)} / {gib(stats.ram_total)}",
        f"{stats.python_version.split()[0]} / {torch}",
    )


class ServersScreen(PistachioScreen):
    """Table of servers; the selected row is the active server."""

    MODE = "servers"
    CSS_PATH = "screen.tcss"
    SUMMARY = "Every ComfyUI server: health, versions, memory, queue; its log"
    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("delete,x", "remove", "Remove"),
        Binding("enter", "activate", "Use", show=False),
        Binding("m", "app.free_memory", "Free mem"),
        Binding("n", "refresh_nodes", "Reload nodes"),
        Binding("l", "logs", "Log"),
        Binding("f", "follow", "Follow log"),
        Binding("s", "search", "Search log"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._follow: Timer | None = None
        self._log_lines: list[str] = []
        self._columns = 0
        self._refill_due = False

    def compose_body(self) -> ComposeResult:
        with Vertical(id="servers-body"):
            yield FilterTable(id="servers-table", zebra_stripes=True)
            yield Static("", id="server-reason")
            with Horizontal(id="log-bar"):
                yield Static(LOG_TITLE, id="log-title", classes="panel-title")
                yield Input(placeholder="search the log", id="log-search")
            yield Log(id="server-log", max_lines=LOG_LINES, auto_scroll=True)

    # No refill on mount: the screen-resume that always follows it fills the table (once, not twice).

    def on_resize(self) -> None:
        if columns_for(self.size.width) != self._columns:
            self.refresh_view(None)

    def _set_columns(self, width: int) -> None:
        """As many columns as fit, most essential first (name, status and URL always)."""
        self._columns = columns_for(width)
        table = self.query_one(FilterTable)
        table.clear(columns=True)
        table.set_columns(*COLUMNS[: self._columns])

    def _selected_name(self) -> str | None:
        return self.query_one(FilterTable).selected_key

    def refresh_view(self, update: SessionUpdate | None) -> None:
        if update is not None and update.kind not in ("health", "queue"):
            return
        if update is None:
            self._refill()
        elif not self._redraw_row(update.session) and not self._refill_due:
            # One refill for a burst of updates (every server failing at once when the network
            # goes), after the screen has taken them all in.
            self._refill_due = True
            self.call_after_refresh(self._refill)
        self._show_reason()

    def _redraw_row(self, session: ServerSession) -> bool:
        """Redraw ``session``'s row alone; False when the table must be refilled instead.

        That is when the row is new or gone, or a cell gets narrower: a redraw only ever widens a
        column, and the table would keep room its cells no longer need.
        """
        table = self.query_one(FilterTable)
        name = session.name
        if self.papp.manager.sessions.get(name) is not session or name not in table.rows:
            return False
        cells = server_row(session)[: self._columns]
        shown = table.get_row(name)
        if len(shown) != len(cells) or any(cell_len(cell_text(new)) < cell_len(cell_text(old))
                                           for new, old in zip(cells, shown)):
            return False
        table.update_row(name, cells)
        self._follow_active(table)
        return True

    def _refill(self) -> None:
        """Every row again, in columns as wide as their cells now need (a refresh only widens them)."""
        self._refill_due = False
        table = self.query_one(FilterTable)
        sessions = self.papp.manager.sessions
        with self.prevent(FilterTable.RowHighlighted):
            self._set_columns(self.size.width)
            table.set_rows([(name, server_row(session)[: self._columns]) for name, session in sessions.items()])
        self._follow_active(table)
        self._show_reason()

    def _follow_active(self, table: FilterTable) -> None:
        """The cursor follows the active server; moving it must not post highlights that switch it."""
        active = self.papp.manager.active_name
        if active in table.shown_keys and table.cursor_row != table.shown_keys.index(active):
            with self.prevent(FilterTable.RowHighlighted):
                table.move_cursor(row=table.shown_keys.index(active))

    def _show_reason(self) -> None:
        name = self._selected_name()
        session = self.papp.manager.sessions.get(name) if name else None
        if session is None:
            text = "No servers yet — press [b]a[/b] to add one (name, URL, optional auth header)."
        elif session.reason:
            text = f"[b]{esc(session.name)}[/b]: {esc(session.reason)}"
        else:
            text = f"[b]{esc(session.name)}[/b] {esc(session.config.url)}"
        self.query_one("#server-reason", Static).update(text)

    def on_data_table_row_highlighted(self, event: FilterTable.RowHighlighted) -> None:
        if event.row_key.value and event.row_key.value != self.papp.manager.active_name:
            self.papp.switch_server(event.row_key.value, announce=False)
            self.query_one("#log-title", Static).update(LOG_TITLE)
            self.query_one(Log).clear()
            self._stop_follow()
        self._show_reason()

    def action_activate(self) -> None:
        name = self._selected_name()
        if name:
            self.papp.switch_server(name)

    def action_add(self) -> None:
        # The form and the confirmation dialog load when first opened, not with the first screen.
        from pistachio_tui.ui.servers.form import ServerForm

        self.app.push_screen(ServerForm(taken=set(self.papp.manager.sessions)), self._added)

    def _added(self, config: ServerConfig | None) -> None:
        if config is not None:
            self.papp.add_server(config)
            self.refresh_view(None)

    def action_edit(self) -> None:
        name = self._selected_name()
        if name is None:
            return
        existing = self.papp.manager.sessions[name].config
        from pistachio_tui.ui.servers.form import ServerForm

        def saved(config: ServerConfig | None) -> None:
            self._edited(name, config)

        self.app.push_screen(ServerForm(existing, set(self.papp.manager.sessions)), saved)

    @work
    async def _edited(self, old_name: str, config: ServerConfig | None) -> None:
        if config is None:
            return
        servers = self.papp.settings.servers
        servers[:] = [config if s.name == old_name else s for s in servers]
        self.papp.save()
        await self.papp.manager.replace(old_name, config)
        self.refresh_view(None)

    def action_remove(self) -> None:
        name = self._selected_name()
        if name is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._removed(name)

        from pistachio_tui.ui.dialogs import ConfirmScreen

        self.app.push_screen(ConfirmScreen(f"Remove server {esc(repr(name))} from the list?"), answered)

    @work
    async def _removed(self, name: str) -> None:
        self.papp.settings.servers[:] = [s for s in self.papp.settings.servers if s.name != name]
        self.papp.save()
        await self.papp.manager.remove(name)
        self.refresh_view(None)
        self.notify(f"Removed {name}")

    def action_refresh_nodes(self) -> None:
        session = self.require_session()
        if session is not None:
            self.run_worker(self._refresh_nodes(session), group="nodes")

    async def _refresh_nodes(self, session: ServerSession) -> None:
        try:
            count = await session.refresh_node_list()
        except ComfyError as exc:
            self.notify(exc.message, severity="error")
        else:
            self.notify(f"{session.name}: {count} node types")

    # -- log ---------------------------------------------------------------

    def action_logs(self) -> None:
        session = self.require_session()
        if session is not None:
            self._load_logs(session)

    @work(exclusive=True, group="logs")
    async def _load_logs(self, session: ServerSession) -> None:
        try:
            entries = await session.logs()
        except ComfyError as exc:
            self.query_one("#log-title", Static).update(f"[red]Log unavailable[/]: {esc(exc.message)}")
            return
        text = "".join(entry.m for entry in entries)
        self._log_lines = text.splitlines()[-LOG_LINES:]
        follow = " (following)" if self._follow else ""
        self.query_one("#log-title", Static).update(f"Log of {esc(session.name)}{follow}")
        self._render_log()

    def _render_log(self) -> None:
        needle = self.query_one("#log-search", Input).value.strip().lower()
        lines = [line for line in self._log_lines if needle in line.lower()] if needle else self._log_lines
        log = self.query_one(Log)
        log.clear()
        log.write_lines(lines)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "log-search":
            self._render_log()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "log-search":
            self.query_one(FilterTable).focus()

    def action_search(self) -> None:
        self.query_one("#log-search", Input).focus()

    def action_follow(self) -> None:
        if self._follow:
            self._stop_follow()
            self.notify("Stopped following the log")
            return
        self._follow = self.set_interval(FOLLOW_SECONDS, self.action_logs)
        self.action_logs()

    def _stop_follow(self) -> None:
        if self._follow is not None:
            self._follow.stop()
            self._follow = None
