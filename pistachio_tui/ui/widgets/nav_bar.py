"""The row of screen names under the header; the number keys and clicks switch screens."""

from __future__ import annotations

from textual.widgets import Tab, Tabs

#: Mode id, label — in number-key order.
SCREENS: list[tuple[str, str]] = [
    ("servers", "Servers"), ("workflows", "Workflows"), ("queue", "Queue"), ("gpu", "GPU"),
    ("fix", "Fix"), ("training", "Training"), ("pods", "Pods"), ("batch", "Batch"), ("history", "History"),
]
#: Three-letter labels for narrow terminals, so every tab stays visible.
SHORT = {"servers": "Srv", "workflows": "Wfl", "queue": "Que", "gpu": "GPU", "fix": "Fix", "training": "Trn",
         "pods": "Pod", "batch": "Bat", "history": "Hst"}


def tab_labels(current: str, width: int) -> list[str]:
    """The longest labels that fit in ``width``: full names, then three letters (the current
    screen keeps its name while it fits), then numbers; every tab always shows."""
    full = [f"{n} {label}" for n, (_, label) in enumerate(SCREENS, 1)]
    short = [f"{n} {SHORT[mode]}" for n, (mode, _) in enumerate(SCREENS, 1)]
    numbers = [str(n) for n in range(1, len(SCREENS) + 1)]
    at = [mode for mode, _ in SCREENS].index(current) if current in dict(SCREENS) else None
    candidates = [full]
    for small in (short, numbers):
        if at is not None:
            candidates.append(small[:at] + [full[at]] + small[at + 1:])
        candidates.append(small)
    # Each tab has one cell of padding on either side.
    return next((labels for labels in candidates if sum(len(t) + 2 for t in labels) <= width), numbers)


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

    def on_resize(self) -> None:
        for (mode, _), text in zip(SCREENS, tab_labels(self._initial, self.size.width)):
            tab = self.query_one(f"#nav-{mode}", Tab)
            if str(tab.label) != text:
                tab.label = text

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        mode = (event.tab.id or "").removeprefix("nav-")
        if mode and mode != self._initial:
            self.app.switch_mode(mode)
            self.active = f"nav-{self._initial}"
