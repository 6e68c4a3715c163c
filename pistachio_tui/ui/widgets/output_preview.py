"""An output file shown in the terminal when it is an image the terminal can draw, else described."""

from __future__ import annotations

import io

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


def describe_bytes(filename: str, data: bytes) -> str:
    """A one-line description used when no picture can be drawn."""
    size = f"{len(data) / 1024:.0f} KB"
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return f"{filename}: {image.format} {image.width}×{image.height}, {size}"
    except Exception:  # noqa: BLE001 — any undecodable file is simply described by size
        return f"{filename}: {size} (not an image this terminal can show)"


class OutputPreview(Vertical):
    """Call :meth:`show` with a file's bytes; falls back to text if rendering fails."""

    DEFAULT_CSS = """
    OutputPreview { height: auto; max-height: 20; }
    OutputPreview .picture { height: 16; width: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", classes="caption")

    def clear(self) -> None:
        """Show nothing (another prompt was picked: its picture must not stay)."""
        for old in self.query(".picture"):
            old.remove()
        self.query_one(".caption", Static).update("")

    def show(self, filename: str, data: bytes, caption: str | None = None) -> None:
        """Draw ``data``; the caption describes it (or says ``caption``)."""
        self.clear()
        self.query_one(".caption", Static).update(Text(caption or describe_bytes(filename, data)))
        try:
            from PIL import Image

            from pistachio_tui.ui.widgets.terminal_graphics import picture_class

            picture = picture_class()(Image.open(io.BytesIO(data)), classes="picture")
        except Exception:  # noqa: BLE001 — no picture support: the caption already describes it
            return
        self.mount(picture)
