"""A tiny app that mounts one view with the views' styles, for Pilot and snapshot tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Footer

from pistachio_tui import ui


class ViewApp(App):
    """Mounts ``make_view()`` above a footer; records the messages the view posts."""

    CSS_PATH = sorted(Path(ui.__file__).parent.glob("*/view.tcss"))

    def __init__(self, make_view: Callable[[], Widget]) -> None:
        super().__init__()
        self._make_view = make_view
        #: Messages the view posted for the shell (e.g. ``PodsView.AddServer``).
        self.posted: list[object] = []
        self.clipboard_text: str | None = None

    def compose(self) -> ComposeResult:
        yield self._make_view()
        yield Footer()

    def on_pods_view_add_server(self, message) -> None:
        self.posted.append(message)

    def copy_to_clipboard(self, text: str) -> None:
        self.clipboard_text = text
        super().copy_to_clipboard(text)


def screen_text(app: App) -> str:
    """Everything on screen as plain text (the SVG export, with the markup stripped)."""
    import html
    import re

    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


async def until(pilot: Pilot, condition: Callable[[], bool], what: str, rounds: int = 400) -> None:
    """Let the app run until ``condition()`` holds; fail naming ``what`` if it never does."""
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}")
