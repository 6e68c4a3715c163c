"""Messages the app sends to its screens."""

from __future__ import annotations

from textual.message import Message

from pistachio_tui.comfy.session import SessionUpdate


class SessionChanged(Message):
    """Something changed on a server session; the screen re-reads what it shows."""

    def __init__(self, update: SessionUpdate) -> None:
        super().__init__()
        self.update = update
