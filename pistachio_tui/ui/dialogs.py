"""Every modal dialog of the app: yes/no questions, a one-line text question, a word typed to
confirm something irreversible, and a read-only text viewer. Each carries its own styles."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, ScreenResultType
from textual.widgets import Button, Input, Label, Static


class Dialog(ModalScreen[ScreenResultType]):
    """Styles the title, text and hint lines the dialogs below share."""

    DEFAULT_CSS = """
    Dialog .dialog-title { text-style: bold; width: 100%; }
    Dialog .dialog-text { margin: 1 0; }
    Dialog .dialog-hint { color: $text-muted; }
    """


class ConfirmScreen(Dialog[bool]):
    """Dismissed with True only on an explicit yes (``y`` or the button)."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 60; max-width: 100%; height: auto; border: thick $warning;
                               background: $surface; padding: 1 2; }
    ConfirmScreen Horizontal { height: auto; margin-top: 1; }
    ConfirmScreen Button { margin-right: 2; }
    """
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            with Horizontal():
                yield Button("Yes", variant="warning", id="yes")
                yield Button("No", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class AskScreen(Dialog[str | None]):
    """One line of text (a path, a name); None when cancelled."""

    DEFAULT_CSS = """
    AskScreen { align: center middle; }
    AskScreen > Vertical { width: 70; max-width: 100%; height: auto; border: thick $primary;
                           background: $surface; padding: 1 2; }
    /* A question longer than the box wraps instead of being cut. */
    AskScreen Label { width: 1fr; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(self.value, id="answer")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TypeToConfirm(Dialog[str | None]):
    """Asks the user to type a word (a pod's name) before something irreversible.

    Dismisses with what was typed on Enter (the caller compares it), None on Escape.
    """

    DEFAULT_CSS = """
    TypeToConfirm { align: center middle; }
    TypeToConfirm > .dialog { width: 70; max-width: 95%; height: auto; padding: 1 2;
                              border: thick $error; background: $surface; }
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


class YesNo(Dialog[bool]):
    """A yes/no question; ``y`` confirms, ``n`` or Escape declines."""

    DEFAULT_CSS = """
    YesNo { align: center middle; }
    YesNo > .dialog { width: 70; max-width: 95%; height: auto; padding: 1 2;
                      border: thick $warning; background: $surface; }
    """
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


class TextModal(Dialog[None]):
    """Read-only text in a scrollable dialog (a config file, a long message); Escape closes."""

    DEFAULT_CSS = """
    TextModal { align: center middle; }
    TextModal > .dialog { width: 90%; height: 85%; padding: 0 1; border: thick $primary; background: $surface; }
    TextModal .text-body { height: 1fr; }
    """
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
