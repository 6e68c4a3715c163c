"""Queue screen: the running prompt's progress, pending prompts, history with errors and outputs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Collapsible, OptionList, ProgressBar, Static

from pistachio_tui.comfy.errors import ComfyError
from pistachio_tui.comfy.session import ServerSession, SessionUpdate
from pistachio_tui.comfy.tracker import PromptState
from pistachio_tui.comfy.types import HistoryEntry, OutputFile, QueueItem
from pistachio_tui.ui.base import PistachioScreen
from pistachio_tui.ui.dialogs import AskScreen
from pistachio_tui.ui.format import duration, esc, gib, plain, status_text
from pistachio_tui.ui.gpu.graph import FixedSparkline
from pistachio_tui.ui.queue.rows import PromptSummary, summarize
from pistachio_tui.ui.widgets.filter_table import FilterTable
from pistachio_tui.ui.widgets.output_preview import OutputPreview
from pistachio_tui.ui.widgets.swatch import swatch as image_swatch

#: ComfyUI's /view re-encodes an image for a thumbnail: webp at quality 50, as its web UI asks.
THUMBNAIL = "webp;50"
THUMBNAILS_KEPT = 32
#: The newest history rows whose first image is fetched (small) for a swatch on the row.
SWATCHES_PREFETCHED = 8
SWATCHES_KEPT = 500
#: Cells longer than this end in "…" (the detail pane shows them whole); the prompt gets what is left.
WORKFLOW_CHARS = 16
PROMPT_CHARS = (16, 60)
#: Below this width the detail pane takes the lists' place on Enter instead of sitting beside them.
SIDE_BY_SIDE = 140
#: Width the history's other columns take (status, workflow, seed, time, outputs, cell padding).
OTHER_COLUMNS = 60
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prompt_chars(lists_width: int) -> int:
    low, high = PROMPT_CHARS
    return max(low, min(high, lists_width - OTHER_COLUMNS))


def summary_cells(summary: PromptSummary, chars: int) -> tuple[str, str, str]:
    return clip(summary.workflow, WORKFLOW_CHARS), clip(summary.positive, chars), summary.seed


def pending_row(item: QueueItem, chars: int) -> tuple[str, tuple]:
    return item.prompt_id, (str(item.number), *summary_cells(summarize(item.prompt, item.extra_data), chars))


def history_row(entry: HistoryEntry, chars: int, swatch: Text | None = None) -> tuple[str, tuple]:
    """A history row; ``swatch`` (a few cells of the first image's colours) goes before the output count."""
    summary = summarize(entry.prompt, entry.extra_data)
    count = str(len(entry.outputs))
    outputs = Text.assemble(swatch, " ", count) if swatch is not None else count
    return entry.prompt_id, (status_text(entry.outcome), *summary_cells(summary, chars), duration(entry.duration),
                             outputs)


def first_image(entry: HistoryEntry) -> OutputFile | None:
    return next((f for f in entry.outputs if f.filename.lower().endswith(IMAGE_SUFFIXES)), None)


def progress_line(state: PromptState) -> str:
    rate = f"{state.it_per_s:.2f} it/s" if state.it_per_s else "— it/s"
    eta = f"ETA {duration(state.eta_s)}" if state.eta_s is not None else "ETA —"
    return f"{rate}  {eta}  cached {len(state.cached_nodes)}  done {len(state.done_nodes)}"


def error_text(state: PromptState, titles: dict[str, str]) -> str:
    """The failed node by title, then what it said."""
    error = state.error
    if error is None:
        return ""
    title = titles.get(error.node_id, error.node_type)
    return (f"[b red]Failed in node {esc(error.node_id)} “{esc(title)}” ({esc(error.node_type)})[/]\n"
            f"{esc(error.exception_type)}: {esc(error.exception_message)}")


class QueueScreen(PistachioScreen):
    """Live view of the active server's queue."""

    MODE = "queue"
    CSS_PATH = "screen.tcss"
    SUMMARY = "Running prompt, pending list, history with errors and outputs"
    BINDINGS = [
        Binding("i", "app.interrupt", "Interrupt"),
        Binding("x", "delete_pending", "Delete"),
        Binding("t", "to_front", "To front"),
        Binding("v", "view_output", "View"),
        Binding("s", "save_output", "Save to…"),
        Binding("r", "refresh", "Refresh"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("escape", "close_detail", "Back", show=False),
        Binding("p", "toggle_previews", "Previews"),
    ]
    #: Live previews are redrawn at most this often (a sampler may send one per step).
    PREVIEW_INTERVAL_S = 1.0
    _drawn_preview: object = None
    _preview_drawn_at = 0.0

    def __init__(self) -> None:
        super().__init__()
        #: Thumbnails fetched, newest last: moving the cursor back and forth asks the server once.
        self._thumbnails: dict[tuple[str, str, str], bytes] = {}
        #: Row swatches by the same key; None for an image that could not be fetched or read.
        self._swatches: dict[tuple[str, str, str], Text | None] = {}
        self._detail_for: str | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="running"):
            yield Static("Idle — nothing running", id="running-title")
            yield ProgressBar(total=100, show_eta=False, id="overall")
            yield Static("", id="node-line")
            yield ProgressBar(total=1, show_eta=False, id="node-steps")
            with Horizontal(id="vram-row"):
                yield Static("VRAM —", id="vram-label")
                yield FixedSparkline(classes="queue-vram")
        with Horizontal(id="queue-body"):
            with Vertical(id="queue-lists"):
                yield Static("Pending", classes="panel-title")
                yield FilterTable(id="pending")
                yield Static("History", classes="panel-title")
                yield FilterTable(id="history")
            with VerticalScroll(id="detail"):
                yield Static("Select a prompt in the history.", id="detail-text")
                with Collapsible(title="Traceback", collapsed=True, id="traceback-box"):
                    yield Static("", id="traceback")
                yield OptionList(id="outputs")
                yield OutputPreview(id="preview")

    def on_mount(self) -> None:
        self.query_one("#pending", FilterTable).set_columns("#", "Workflow", "Prompt", "Seed")
        # Out is as wide as a swatch and a count from the start: it must not jump when the swatches arrive.
        self.query_one("#history", FilterTable).set_columns("Status", "Workflow", "Prompt", "Seed", "Time", "Out",
                                                            widths={"Out": 6})
        self.query_one("#traceback-box").display = False
        self.query_one("#outputs").display = False
        self.refresh_view(None)

    def refresh_view(self, update: SessionUpdate | None) -> None:
        session = self.session
        if update is not None and session is not None and update.session is not session:
            return
        kind = update.kind if update else None
        self._show_running(session)
        if kind in (None, "queue", "health", "finished"):
            self._fill_pending(session)
        if kind in (None, "history", "finished"):
            self._fill_history(session)
        if kind in (None, "health"):
            self._show_vram(session)

    def _show_vram(self, session: ServerSession | None) -> None:
        """Memory use of the server's first device over time, on a 0–100% scale.

        A CPU server's device memory is its RAM, and is called so.
        """
        samples = list(session.vram_used) if session else []
        device = session.stats.main_device if session and session.stats else None
        kind = "RAM" if device is not None and device.type == "cpu" else "VRAM"
        label = f"{kind} —"
        if samples and device is not None:
            label = f"{kind} {samples[-1]:.0%} of {gib(device.vram_total)}"
        self.query_one("#vram-label", Static).update(label)
        self.query_one(FixedSparkline).set_data(samples, 1.0)

    def _show_running(self, session: ServerSession | None) -> None:
        state = session.running() if session else None
        title = self.query_one("#running-title", Static)
        overall = self.query_one("#overall", ProgressBar)
        steps = self.query_one("#node-steps", ProgressBar)
        # Idle: the node line and its bar would only be blank rows.
        for widget in (self.query_one("#node-line"), steps):
            widget.display = state is not None
        if state is None:
            down = session is not None and session.state == "down"
            reason = session.reason if session is not None else ""
            title.update(f"[red]Server down[/]: {esc(reason)}" if down else "Idle — nothing running")
            overall.update(progress=0)
            steps.update(total=1, progress=0)
            self.query_one("#node-line", Static).update("")
            return
        title.update(f"Running [b]{state.prompt_id[:8]}[/b]  {progress_line(state)}")
        overall.update(progress=round(state.fraction * 100, 1))
        if not state.ours and state.started_at is None and state.current_node is None:
            # ComfyUI sends a prompt's execution events only to the client that queued it
            # (to everyone when it was queued without a client id, and then they do arrive).
            self.query_one("#node-line", Static).update(
                "Queued by another client: ComfyUI sends its node progress only to that client")
        else:
            node = state.current_title or state.current_node or "—"
            step = f"  step {state.value}/{state.max}" if state.max else ""
            self.query_one("#node-line", Static).update(f"Node: {esc(node)}{step}")
        steps.update(total=max(state.max, 1), progress=state.value)
        self._show_live_preview(state)

    def _show_live_preview(self, state: PromptState) -> None:
        preview = state.preview
        now = time.monotonic()
        if preview is None or preview is self._drawn_preview or now - self._preview_drawn_at < self.PREVIEW_INTERVAL_S:
            return
        self._drawn_preview, self._preview_drawn_at = preview, now
        node = state.current_title or preview.node_id or "?"
        self.query_one(OutputPreview).show(f"live preview of {state.prompt_id[:8]} ({node})", preview.data)

    def action_toggle_previews(self) -> None:
        session = self.require_session()
        if session is not None:
            session.previews = not session.previews
            self.notify(f"Live previews {'on' if session.previews else 'off'} for prompts queued from here")

    @property
    def _prompt_chars(self) -> int:
        width = self.size.width
        return prompt_chars(width if width < SIDE_BY_SIDE else width * 3 // 5)

    def _fill_pending(self, session: ServerSession | None) -> None:
        pending = self.query_one("#pending", FilterTable)
        rows = [pending_row(item, self._prompt_chars) for item in (session.queue.pending if session else [])]
        pending.set_rows(rows)
        # An empty pending list takes no focus, so the keys (/ above all) act on the history the user sees.
        pending.can_focus = bool(rows) or bool(pending.filter_text)
        if not pending.can_focus and self.focused is pending:
            self.query_one("#history", FilterTable).focus()

    def _fill_history(self, session: ServerSession | None) -> None:
        entries = list(session.history.values()) if session else []
        rows = []
        for entry in entries:
            image = first_image(entry)
            swatch = self._swatches.get(self._image_key(session, image)) if session and image else None
            rows.append(history_row(entry, self._prompt_chars, swatch))
        self.query_one("#history", FilterTable).set_rows(rows)
        if session is not None and self._swatches_missing(session, entries):
            self._fetch_swatches(session, entries[:SWATCHES_PREFETCHED])

    @staticmethod
    def _image_key(session: ServerSession, output: OutputFile) -> tuple[str, str, str]:
        return session.name, output.subfolder, output.filename

    def _swatches_missing(self, session: ServerSession, entries: list[HistoryEntry]) -> bool:
        images = (first_image(entry) for entry in entries[:SWATCHES_PREFETCHED])
        return any(image is not None and self._image_key(session, image) not in self._swatches for image in images)

    @work(exclusive=True, group="swatches", exit_on_error=False)
    async def _fetch_swatches(self, session: ServerSession, entries: list[HistoryEntry]) -> None:
        """Fetch the newest prompts' first images small, one at a time, and put their swatches on the rows."""
        for entry in entries:
            image = first_image(entry)
            if image is not None and self._image_key(session, image) not in self._swatches:
                try:
                    await self._thumbnail(session, image)
                except ComfyError:
                    continue  # that row simply has no swatch; the server is asked again on the next start
        self._fill_history(session)

    async def _thumbnail(self, session: ServerSession, output: OutputFile) -> bytes:
        """The small copy of ``output`` (fetched once), its swatch kept; raises ``ComfyError``."""
        key = self._image_key(session, output)
        data = self._thumbnails.get(key)
        if data is None:
            try:
                data = await session.client.view(output.filename, output.subfolder, output.type, THUMBNAIL)
            except ComfyError:
                self._swatches[key] = None
                raise
            self._thumbnails[key] = data
            while len(self._thumbnails) > THUMBNAILS_KEPT:
                del self._thumbnails[next(iter(self._thumbnails))]
        if key not in self._swatches:
            self._swatches[key] = await asyncio.to_thread(image_swatch, data)
            while len(self._swatches) > SWATCHES_KEPT:
                del self._swatches[next(iter(self._swatches))]
        return data

    # -- layout: side by side when wide; when narrow, Enter shows the detail in the lists' place --

    def on_resize(self) -> None:
        narrow = self.size.width < SIDE_BY_SIDE
        if narrow != self.has_class("-narrow"):
            self.set_class(narrow, "-narrow")
            self.remove_class("-show-detail")
            self.refresh_view(None)

    def on_data_table_row_selected(self, event: FilterTable.RowSelected) -> None:
        if event.data_table.id == "history" and self.has_class("-narrow"):
            self.add_class("-show-detail")
            self.query_one("#detail").focus()

    def action_close_detail(self) -> None:
        if self.has_class("-show-detail"):
            self.remove_class("-show-detail")
            self.query_one("#history", FilterTable).focus()
        else:
            self.action_leave_input()

    @staticmethod
    def _row_key(table: FilterTable) -> str | None:
        return table.selected_key

    def _selected_entry(self) -> HistoryEntry | None:
        session = self.session
        key = self.query_one("#history", FilterTable).selected_key
        return session.history.get(key) if session and key else None

    def action_filter(self) -> None:
        """``/`` filters the focused list (the history when neither is focused)."""
        focused = self.focused
        table = focused if isinstance(focused, FilterTable) else self.query_one("#history", FilterTable)
        table.action_filter()

    def on_data_table_row_highlighted(self, event: FilterTable.RowHighlighted) -> None:
        if event.data_table.id == "history":
            self._show_detail(self._selected_entry())

    def _show_detail(self, entry: HistoryEntry | None) -> None:
        session = self.session
        box = self.query_one("#traceback-box", Collapsible)
        outputs = self.query_one("#outputs", OptionList)
        key = entry.prompt_id if entry is not None else None
        if key != self._detail_for:
            # Another prompt: nothing of the previous one's outputs may stay on screen.
            self._detail_for = key
            self.query_one(OutputPreview).clear()
            if entry is not None and session is not None and (image := first_image(entry)) is not None:
                self._show_thumbnail(session, image)
        if entry is None or session is None:
            self.query_one("#detail-text", Static).update("Select a prompt in the history.")
            box.display = outputs.display = False
            return
        state = session.tracker.get(entry.prompt_id)
        summary = summarize(entry.prompt, entry.extra_data)
        lines = [Text.assemble(status_text(entry.outcome), "  ", (entry.prompt_id, "bold")).markup,
                 f"{len(entry.prompt)} nodes, took {duration(entry.duration)}",
                 f"Workflow {esc(summary.workflow)} · seed {esc(summary.seed)}",
                 f"[dim]{esc(summary.positive)}[/]"]
        if state is not None and state.error is not None:
            lines.append(error_text(state, session.prompt_titles(entry.prompt_id)))
            self.query_one("#traceback", Static).update(Text("".join(state.error.traceback)))
            box.display = True
        else:
            box.display = False
        if state is not None and state.interrupted is not None:
            lines.append(esc(f"Interrupted in node {state.interrupted.node_id} ({state.interrupted.node_type})"))
        self.query_one("#detail-text", Static).update("\n".join(lines))
        outputs.clear_options()
        outputs.add_options([plain(f"{f.kind}: {f.subfolder + '/' if f.subfolder else ''}{f.filename}")
                             for f in entry.outputs])
        outputs.display = bool(entry.outputs)

    def _selected_output(self) -> OutputFile | None:
        entry = self._selected_entry()
        if entry is None or not entry.outputs:
            self.notify("Pick a history entry with outputs first.", severity="warning")
            return None
        index = self.query_one("#outputs", OptionList).highlighted or 0
        return entry.outputs[min(index, len(entry.outputs) - 1)]

    def action_view_output(self) -> None:
        output = self._selected_output()
        session = self.session
        if output is not None and session is not None:
            self._fetch_and_show(session, output)

    @work(exclusive=True, group="preview")
    async def _show_thumbnail(self, session: ServerSession, output: OutputFile) -> None:
        """The first image of the picked prompt, small (the server re-encodes it)."""
        try:
            data = await self._thumbnail(session, output)
        except ComfyError as exc:
            self.query_one(OutputPreview).show(output.filename, b"", f"No thumbnail: {exc.message}")
            return
        self.query_one(OutputPreview).show(output.filename, data, f"{output.filename} (thumbnail; v shows it whole)")

    @work(exclusive=True, group="preview")
    async def _fetch_and_show(self, session: ServerSession, output: OutputFile) -> None:
        try:
            data = await session.client.view(output.filename, output.subfolder, output.type)
        except ComfyError as exc:
            self.notify(exc.message, severity="error")
            return
        self.query_one(OutputPreview).show(output.filename, data)

    def action_save_output(self) -> None:
        output = self._selected_output()
        session = self.session
        if output is None or session is None:
            return
        default = str(Path.home() / output.filename)

        def chosen(path: str | None) -> None:
            if path:
                self._save(session, output, path)

        self.app.push_screen(AskScreen(f"Save {esc(output.filename)} to:", default), chosen)

    @work(group="save")
    async def _save(self, session: ServerSession, output: OutputFile, path: str) -> None:
        try:
            data = await session.client.view(output.filename, output.subfolder, output.type)
            target = Path(path).expanduser()
            if target.is_dir():
                target = target / output.filename
            target.write_bytes(data)
        except ComfyError as exc:
            self.notify(exc.message, severity="error")
        except OSError as exc:
            self.notify(f"Cannot write {path}: {exc.strerror or exc}", severity="error")
        else:
            self.notify(f"Saved {target}")

    def _selected_pending(self) -> str | None:
        return self.query_one("#pending", FilterTable).selected_key

    def action_delete_pending(self) -> None:
        session, prompt_id = self.require_session(), self._selected_pending()
        if session and prompt_id:
            self.papp.server_call(session.delete([prompt_id]), f"Deleted {prompt_id[:8]}")

    def action_to_front(self) -> None:
        session, prompt_id = self.require_session(), self._selected_pending()
        if session and prompt_id:
            self.papp.server_call(session.move_to_front(prompt_id), f"{prompt_id[:8]} moved to the front")

    def action_refresh(self) -> None:
        session = self.require_session()
        if session is not None:
            self.papp.server_call(session.refresh_history())
            self.papp.server_call(session.refresh_queue())
