"""Caption review: every image with its caption and what is wrong with it, edited in place.

Reads and writes through :mod:`pistachio_tui.training.captions`; Enter on a
row puts its caption in the edit line, Enter there writes the ``.txt`` (the
trigger word put first) and re-checks the whole folder (a fix can clear a
duplicate elsewhere).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from pistachio_tui.training.captions import CaptionReview, review_captions, set_caption
from pistachio_tui.training.errors import TrainingError

__all__ = ["CaptionsScreen"]


class CaptionsScreen(ModalScreen[None]):
    """``folder``'s images and captions; Escape closes."""

    DEFAULT_CSS = """
    CaptionsScreen { align: center middle; }
    CaptionsScreen > Vertical { width: 95%; height: 90%; border: thick $primary; background: $surface; }
    CaptionsScreen #cap-table { height: 1fr; }
    CaptionsScreen #cap-summary { padding: 0 1; background: $boost; }
    """
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, folder: Path, trigger: str | None = None) -> None:
        super().__init__()
        self.folder = folder
        self.trigger = trigger
        self.review: CaptionReview | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Captions in {self.folder}" + (f" — trigger word: {self.trigger}" if self.trigger else ""))
            yield Static("", id="cap-summary")
            table: DataTable = DataTable(id="cap-table", cursor_type="row")
            table.add_columns("File", "Caption", "Problems")
            yield table
            yield Input(placeholder="Enter on a row edits its caption; Enter here writes it", id="cap-edit",
                        compact=True)

    async def on_mount(self) -> None:
        await self.reload()
        self.query_one("#cap-table", DataTable).focus()

    async def reload(self) -> None:
        try:
            self.review = await asyncio.to_thread(review_captions, self.folder, self.trigger)
        except TrainingError as exc:
            self.query_one("#cap-summary", Static).update(Text(exc.message, style="bold red"))
            return
        table = self.query_one("#cap-table", DataTable)
        row = table.cursor_row
        table.clear()
        for entry in self.review.entries:
            caption = "(no caption file)" if entry.caption is None else entry.caption or "(empty)"
            table.add_row(entry.name, caption, Text("; ".join(entry.flags), style="yellow"), key=entry.name)
        table.move_cursor(row=min(row, table.row_count - 1))
        summary = Text(self.review.summary())
        if self.review.trigger_problem:
            summary.append(f"\n{self.review.trigger_problem}", style="bold yellow")
        self.query_one("#cap-summary", Static).update(summary)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        entry = next(e for e in self.review.entries if e.name == event.row_key.value) if self.review else None
        edit = self.query_one("#cap-edit", Input)
        edit.value = entry.caption or "" if entry else ""
        edit.focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        table = self.query_one("#cap-table", DataTable)
        if not table.row_count:
            return
        name = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        try:
            await asyncio.to_thread(set_caption, self.folder, name, event.value, self.trigger)
        except TrainingError as exc:
            self.query_one("#cap-summary", Static).update(Text(exc.message, style="bold red"))
            return
        event.input.value = ""
        await self.reload()
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
