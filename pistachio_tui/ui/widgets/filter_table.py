"""A table you can filter and sort by keyboard, as in k9s: ``/`` filters, ``<`` ``>`` ``=`` sort, Esc clears.

The screen hands it every row with :meth:`FilterTable.set_rows` (as often as its
data changes); the table shows those matching the filter, in the chosen order,
and keeps the cursor on the row the user picked. Cells given as ``str`` are shown
as they are, never as markup (they quote servers and files).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input

Row = tuple[str, Sequence[Any]]

_NUMBER = re.compile(r"^[-+]?\d+(?:\.\d+)?")


def cell_text(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _as_text(cell: Any) -> Text:
    return cell if isinstance(cell, Text) else Text(str(cell))


def sort_key(cell: Any) -> tuple[int, float, str]:
    """Numbers (``12``, ``3.5G``, ``1m02s``) before words, numerically; dashes last."""
    text = cell_text(cell).strip()
    if text in ("", "—", "-"):
        return (2, 0.0, "")
    number = _NUMBER.match(text)
    if number:
        return (0, float(number.group()), text.lower())
    return (1, 0.0, text.lower())


class FilterInput(Input):
    """The one-line filter a :class:`FilterTable` puts above itself while it filters."""

    DEFAULT_CSS = """
    FilterInput { height: 1; border: none; padding: 0 1; background: $boost; }
    """
    BINDINGS = [Binding("escape", "clear", "Clear filter", show=False)]

    def __init__(self, table: FilterTable) -> None:
        super().__init__(table.filter_text, placeholder="type to filter · Enter keeps it · Esc clears",
                         classes="table-filter")
        self.table = table

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.table.filter_text = event.value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.table.focus()
        if not event.value.strip():
            self.table.clear_filter()

    def action_clear(self) -> None:
        self.table.clear_filter()


class FilterTable(DataTable):
    """A row-cursor table over rows given whole; filter and sort are its own state."""

    BINDINGS = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("greater_than_sign", "sort(1)", "Sort →", key_display=">", show=False),
        Binding("less_than_sign", "sort(-1)", "Sort ←", key_display="<", show=False),
        Binding("equals_sign", "reverse", "Reverse order", key_display="=", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None, zebra_stripes: bool = False) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=zebra_stripes)
        self._all: list[Row] = []
        self._positions: dict[str, int] = {}
        self._filter = ""
        #: Column index sorted on (None: the order rows were given in) and its direction.
        self.sort_column: int | None = None
        self.sort_reverse = False
        self._labels: list[str] = []

    # -- the rows ----------------------------------------------------------------

    def set_columns(self, *labels: str, widths: dict[str, int] | None = None) -> None:
        """Columns by label; ``widths`` fixes some (label → cells), so changing values do not make them jump."""
        self._labels = list(labels)
        for label in labels:
            self.add_column(label, width=(widths or {}).get(label))

    def set_rows(self, rows: Sequence[Row]) -> None:
        """All rows (key, cells); those shown depend on the filter and sort."""
        self._all = list(rows)
        self._positions = {key: index for index, (key, _) in enumerate(self._all)}
        self._show()

    def update_row(self, key: str, cells: Sequence[Any]) -> None:
        """Change one row given earlier. Unfiltered and unsorted, it is redrawn in place (a batch of
        thousands of jobs changes one row per event); otherwise the table is refilled, as the row
        may now match the filter or belong elsewhere in the order."""
        position = self._positions.get(key)
        if position is None:
            return
        self._all[position] = (key, cells)
        if self._filter.strip() or self.sort_column is not None or key not in self.rows:
            self._show()
            return
        for column, cell in zip(self.columns, cells):
            self.update_cell(key, column, _as_text(cell), update_width=True)

    @property
    def shown_keys(self) -> list[str]:
        return [str(row.key.value) for row in self.ordered_rows]

    @property
    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0))
        return row_key.value

    def _visible(self) -> list[Row]:
        needle = self._filter.strip().lower()
        rows = [row for row in self._all
                if not needle or needle in " ".join(cell_text(c) for c in row[1]).lower()]
        if self.sort_column is not None:
            column = self.sort_column
            rows.sort(key=lambda row: sort_key(row[1][column]) if column < len(row[1]) else (2, 0.0, ""),
                      reverse=self.sort_reverse)
        return rows

    def _show(self) -> None:
        """Refill; the cursor stays on the row the user picked (tables refill every few seconds)."""
        selected = self.selected_key
        self.clear()
        rows = self._visible()
        for key, cells in rows:
            self.add_row(*(_as_text(c) for c in cells), key=key)
        keys = [key for key, _ in rows]
        if selected in keys:
            self.move_cursor(row=keys.index(selected))
        self._title()

    def _title(self) -> None:
        parts = []
        if self._filter.strip():
            parts.append(f"/{self._filter.strip()}  {self.row_count} of {len(self._all)}")
        if self.sort_column is not None and self.sort_column < len(self._labels):
            arrow = "↓" if self.sort_reverse else "↑"
            parts.append(f"by {self._labels[self.sort_column]} {arrow}")
        self.border_subtitle = " · ".join(parts) or None

    # -- filter ------------------------------------------------------------------

    @property
    def filter_text(self) -> str:
        return self._filter

    @filter_text.setter
    def filter_text(self, value: str) -> None:
        self._filter = value
        self._show()

    def action_filter(self) -> None:
        """Show the filter field above the table and type into it."""
        existing = self._filter_input()
        if existing is None:
            existing = FilterInput(self)
            self.parent.mount(existing, before=self)  # type: ignore[union-attr]
        existing.focus()

    def clear_filter(self) -> None:
        field = self._filter_input()
        if field is not None:
            field.remove()
        self.filter_text = ""
        self.focus()

    def action_clear_filter(self) -> None:
        self.clear_filter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # With no filter to clear, Esc means whatever it means to the screen.
        if action == "clear_filter":
            return bool(self._filter) or self._filter_input() is not None
        return True

    def _filter_input(self) -> FilterInput | None:
        siblings = self.parent.children if self.parent is not None else []
        return next((w for w in siblings if isinstance(w, FilterInput) and w.table is self), None)

    # -- sort --------------------------------------------------------------------

    def action_sort(self, step: int) -> None:
        count = len(self.columns)
        if not count:
            return
        current = -1 if self.sort_column is None else self.sort_column
        self.sort_column = (current + step) % count
        self._show()

    def action_reverse(self) -> None:
        if self.sort_column is None:
            self.sort_column = 0
        else:
            self.sort_reverse = not self.sort_reverse
        self._show()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by it; a second click flips the order."""
        event.stop()
        if self.sort_column == event.column_index:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = event.column_index, False
        self._show()
