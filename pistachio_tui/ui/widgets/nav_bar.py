"""The row of screen names under the header; the number keys and clicks switch screens."""

from __future__ import annotations

from textual.widgets import Tab, Tabs

#: Mode id, label — in number-key order.
SCREENS: list[tuple[str, str]] = [
    ("servers", "Servers"), ("workflows", "Workflows"), ("queue", "Queue"), ("gpu", "GPU"),
    ("fix", "Fix"), ("training", "Training"), ("pods", "Pods"), ("batch", "Batch"), ("history", "History"),
]


class NavBar(Tabs):
    """Tabs that never take focus: the keyboard reaches screens with their number keys."""

    can_focus = False

    DEFAULT_CSS = """
    NavBar { height: 2; }
    """

    def __init__(self, active: str) -> None:
        tabs = [Tab(f"{n} {label}", id=f"nav-{mode}") for n, (mode, label) in enumerate(SCREENS, 1)]
        super().__init__(*tabs, active=f"nav-{active}")
        self._initial = active

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        mode = (event.tab.id or "").removeprefix("nav-")
        if mode and mode != self._initial:
            self.app.switch_mode(mode)
            self.active = f"nav-{self._initial}"
