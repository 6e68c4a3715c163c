"""A bordered note saying what a screen will do and what works today."""

from __future__ import annotations

from rich.console import RenderableType
from textual.widgets import Static


class ComingPanel(Static):
    """Static text in a titled box (styled by the ``coming`` class in app.tcss)."""

    def __init__(self, title: str, body: RenderableType) -> None:
        super().__init__(body, classes="coming")
        self.border_title = title
