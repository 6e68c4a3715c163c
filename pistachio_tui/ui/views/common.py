"""Small pieces the domain views share: a status line, confirmation dialogs, a text viewer."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

#: Styles of the dialogs below; the shell loads it with the views' own files.
CSS_FILE = Path(__file__).with_suffix(".tcss")

_LEVELS = ("info", "ok", "warning", "error")


class StatusLine(Static):
    """One line under a view saying what just happened (or went wrong)."""

    def show(self, message: str, level: str = "info") -> None:
        """Replace the line; ``level`` is info, ok, warning or error (it picks the colour)."""
        for name in _LEVELS:
            self.set_class(name == level, f"-{name}")
        self.update(message)


class TypeToConfirm(ModalScreen[str | None]):
    """Asks the user to type a word (a pod's name) before something irreversible.

    Dismisses with what was typed on Enter (the caller compares it), None on Escape.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, explanation: str, placeholder: str = "") -> None:
        super().__init__()
        self._title = title
        self._explanation = explanation
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Static(self._explanation, classes="dialog-text")
            yield Input(placeholder=self._placeholder, id="confirm-input")
            yield Label("Enter to confirm · Esc to cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class YesNo(ModalScreen[bool]):
    """A yes/no question; ``y`` confirms, ``n`` or Escape declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, explanation: str) -> None:
        super().__init__()
        self._title = title
        self._explanation = explanation

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Static(self._explanation, classes="dialog-text")
            yield Label("y: yes · n / Esc: no", classes="dialog-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TextModal(ModalScreen[None]):
    """Read-only text in a scrollable dialog (a config file, a long message); Escape closes."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self._title = title
        self._text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog text-dialog"):
            yield Label(self._title, classes="dialog-title")
            with VerticalScroll(classes="text-body"):
                yield Static(Text(self._text), classes="dialog-text")
            yield Label("Esc to close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
