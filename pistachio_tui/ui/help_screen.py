"""``?``: every key binding, grouped by screen, so nothing has to be guessed."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pistachio_tui.ui.base import PistachioScreen, ViewScreen
from pistachio_tui.ui.widgets.filter_table import FilterTable


def _key(binding: Binding) -> str:
    return binding.key_display or binding.key.replace("question_mark", "?")


def binding_lines(title: str, bindings: list[Binding]) -> list[str]:
    lines = [f"[b $primary]{title}[/]"]
    for binding in bindings:
        if binding.system and not binding.description:
            continue  # Textual's own plumbing (ctrl+c only says to press ctrl+q)
        description = binding.description or binding.action
        lines.append(f"  [b]{_key(binding):>10}[/]  {description}")
    return lines


class HelpScreen(ModalScreen[None]):
    """Lists the app's global keys, then each screen's own."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 72; max-width: 100%; height: 90%; border: thick $primary;
                            background: $surface; padding: 0 1; }
    HelpScreen VerticalScroll { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, screens: tuple[type[PistachioScreen], ...]) -> None:
        super().__init__()
        self.screens = screens

    def compose(self) -> ComposeResult:
        # The screen the user came from comes first: its keys are the ones being looked for.
        stack = self.app.screen_stack
        below = stack[-2] if len(stack) > 1 and stack[-1] is self else stack[-1]
        ordered = sorted(self.screens, key=lambda screen: not isinstance(below, screen))
        sections = [self._section(screen) for screen in ordered]
        everywhere = binding_lines("Everywhere", self._declared(App) + self._declared(type(self.app)))
        tables = binding_lines("Tables (Servers, Queue, Pods, Batch)", self._declared(FilterTable))
        at = 1 if ordered and isinstance(below, ordered[0]) else 0
        sections[at:at] = [everywhere, tables]
        lines = ["Pistachio — keys ([b]Esc[/b] closes; [b]ctrl+p[/b] searches every action)"]
        for section in sections:
            lines += ["", *section]
        with Vertical():
            with VerticalScroll():
                yield Static("\n".join(lines))

    def _section(self, screen: type[PistachioScreen]) -> list[str]:
        bindings = self._declared(screen)
        if issubclass(screen, ViewScreen):
            bindings += self._declared(screen.VIEW_CLASS)
        return binding_lines(f"{screen.__name__.removesuffix('Screen')} — {screen.SUMMARY}", bindings)

    @staticmethod
    def _declared(owner: type) -> list[Binding]:
        return [b if isinstance(b, Binding) else Binding(*b) for b in owner.__dict__.get("BINDINGS", [])]
