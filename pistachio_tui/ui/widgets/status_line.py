"""One line under a view saying what just happened (or went wrong)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

_LEVELS = ("info", "ok", "warning", "error")


class StatusLine(Static):
    """One line under a view saying what just happened (or went wrong)."""

    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; color: $text-muted; }
    StatusLine.-ok { color: $success; }
    StatusLine.-warning { color: $warning; }
    StatusLine.-error { color: $error; text-style: bold; }
    """

    def show(self, message: str, level: str = "info") -> None:
        """Replace the line with ``message`` as plain text (it often quotes a server or a file);
        ``level`` is info, ok, warning or error (it picks the colour)."""
        for name in _LEVELS:
            self.set_class(name == level, f"-{name}")
        self.update(Text(message))
