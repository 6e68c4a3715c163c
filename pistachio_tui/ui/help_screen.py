"""``?``: every key binding, grouped by screen, so nothing has to be guessed."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pistachio_tui.ui.base import PistachioScreen, ViewScreen


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
        lines = ["Pistachio — keys ([b]Esc[/b] closes; [b]ctrl+p[/b] searches every action)", ""]
        lines += binding_lines("Everywhere", self._declared(App) + self._declared(type(self.app)))
        for screen in self.screens:
            summary = screen.SUMMARY
            bindings = self._declared(screen)
            if issubclass(screen, ViewScreen):
                bindings += self._declared(screen.VIEW_CLASS)
            lines += ["", *binding_lines(f"{screen.__name__.removesuffix('Screen')} — {summary}", bindings)]
        with Vertical():
            with VerticalScroll():
                yield Static("\n".join(lines))

    @staticmethod
    def _declared(owner: type) -> list[Binding]:
        return [b if isinstance(b, Binding) else Binding(*b) for b in owner.__dict__.get("BINDINGS", [])]
