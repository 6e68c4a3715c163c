"""A log pane over ``training.logindex.LogIndex``: it reads only the lines on screen.

The index is built (and kept up to date while the trainer writes) in its own
thread; this widget asks it for ``height`` lines at the top line it shows, so a
multi-gigabyte log costs no more to display than a short one. At the end of the
file it follows new lines, like ``tail -f``, until the user scrolls up.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.widget import Widget

from pistachio_tui.training.logindex import LogIndex


class LogLines(Widget, can_focus=True):
    """Shows lines ``top … top+height`` of a ``LogIndex``; ``mark`` highlights one line."""

    BINDINGS = [
        Binding("up", "scroll_lines(-1)", "Up", show=False),
        Binding("down", "scroll_lines(1)", "Down", show=False),
        Binding("pageup", "scroll_page(-1)", "Page up", show=False),
        Binding("pagedown", "scroll_page(1)", "Page down", show=False),
        Binding("home", "top", "Top", show=False),
        Binding("end", "follow", "Follow", show=False),
    ]

    top: reactive[int] = reactive(0)
    mark: reactive[int | None] = reactive(None)
    #: Stick to the end as lines arrive (on until the user scrolls up).
    following: reactive[bool] = reactive(True)

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.index: LogIndex | None = None
        self._seen_lines = -1

    def open(self, index: LogIndex | None) -> None:
        """Show another log (None: nothing); the previous index is closed."""
        if self.index is not None:
            self.index.close()
        self.index = index
        self.top, self.mark, self.following = 0, None, True
        self._seen_lines = -1
        self.refresh()

    def on_mount(self) -> None:
        self.set_interval(0.5, self._check_growth)

    def on_unmount(self) -> None:
        if self.index is not None:
            self.index.close()

    @property
    def line_count(self) -> int:
        return self.index.line_count if self.index is not None else 0

    def _last_top(self) -> int:
        return max(self.line_count - self.size.height, 0)

    @property
    def first_shown(self) -> int:
        """The top line on screen: the last page while following, else ``top``."""
        return self._last_top() if self.following else self.top

    def _check_growth(self) -> None:
        count = self.line_count
        if count != self._seen_lines:
            self._seen_lines = count
            self.refresh()

    def show_line(self, line: int) -> None:
        """Scroll so ``line`` is visible (a third down the pane) and highlight it."""
        self.following = False
        self.mark = line
        self.top = min(max(line - self.size.height // 3, 0), self._last_top())

    def action_scroll_lines(self, delta: int) -> None:
        start = self.first_shown
        self.following = False
        self.top = min(max(start + delta, 0), self._last_top())
        if delta > 0 and self.top == self._last_top():
            self.following = True

    def action_scroll_page(self, direction: int) -> None:
        self.action_scroll_lines(direction * max(self.size.height - 1, 1))

    def action_top(self) -> None:
        self.following = False
        self.top = 0

    def action_follow(self) -> None:
        self.following = True

    def render(self) -> Text:
        if self.index is None:
            return Text("No log file for this run.", style="dim")
        height = max(self.size.height, 1)
        width = len(str(self.line_count))
        top = self.first_shown
        text = Text(no_wrap=True, overflow="ellipsis")
        for offset, line in enumerate(self.index.lines(top, height)):
            number = top + offset
            if offset:
                text.append("\n")
            text.append(f"{number + 1:>{width}} ", style="dim")
            text.append(line, style="reverse" if number == self.mark else "")
        if not text:
            progress = self.index.progress
            return Text(f"Indexing the log… {progress.fraction:.0%}", style="dim")
        return text
