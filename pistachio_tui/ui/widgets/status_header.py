"""The top line of every screen: app name, active server and its health, demo label."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from pistachio_tui.comfy.session import CONNECTED, SessionManager
from pistachio_tui.ui.format import state_text


def header_text(manager: SessionManager | None, demo_label: str | None, width: int = 0) -> Text:
    """What the header says, from the session manager's current state.

    A demo label comes first, so a narrow terminal never clips the warning
    that the server is simulated; when the line is wider than ``width``, the
    label keeps only its first part ("SIMULATED ComfyUI").
    """
    text = _header(manager, demo_label)
    if demo_label and width and text.cell_len > width:
        text = _header(manager, demo_label.split(" — ")[0])
    return text


def _header(manager: SessionManager | None, demo_label: str | None) -> Text:
    text = Text()
    if demo_label:
        text.append(f" {demo_label} ", style="bold black on yellow")
        text.append(" ")
    else:
        text.append("Pistachio  ", style="bold")
    session = manager.active if manager else None
    if session is None:
        text.append("no server — press 1 then a to add one", style="dim")
    else:
        text.append(f"{session.name} ")
        text.append_text(state_text(session.state))
        if session.state == CONNECTED:
            queued = len(session.queue.running) + len(session.queue.pending)
            text.append(f"  queue {queued}", style="dim")
    return text


class StatusHeader(Static):
    """Re-rendered by its screen whenever a session changes."""

    DEFAULT_CSS = """
    StatusHeader { height: 1; background: $panel; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.refresh_header()

    def refresh_header(self) -> None:
        app = self.app
        self.update(header_text(getattr(app, "manager", None), getattr(app, "demo_label", None),
                                self.size.width - 2))

    def on_resize(self) -> None:
        self.refresh_header()
