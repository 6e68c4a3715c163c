"""A field whose value comes from the server's list (checkpoints, LoRAs, VAEs, samplers, schedulers, input images).

Typing completes from the list (→ accepts); ↓ opens the whole list in a dialog
that filters as you type, every word anywhere in the name, so one LoRA among
hundreds is a few letters away. A field that takes an input image also offers to
upload one from this computer.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

#: What the dialog returns when the user asks to upload a file instead of picking one.
UPLOAD = "\0upload"
#: Options shown at once; the filter narrows the rest.
SHOWN = 500


def matches(choices: list[str], query: str) -> list[str]:
    """Choices holding every word of ``query`` (any case, any order)."""
    words = query.lower().split()
    return [c for c in choices if all(w in c.lower() for w in words)]


class ChoiceScreen(ModalScreen[str | None]):
    """The list to pick from, narrowed by the filter field; Enter picks, Esc cancels."""

    DEFAULT_CSS = """
    ChoiceScreen { align: center middle; }
    ChoiceScreen > Vertical { width: 80; max-width: 100%; height: 80%; border: thick $primary;
                              background: $surface; padding: 0 1; }
    ChoiceScreen Input { height: 1; border: none; padding: 0 1; background: $boost; margin: 1 0; }
    ChoiceScreen OptionList { height: 1fr; }
    ChoiceScreen .hint { color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
        # Priority: the filter field would take ctrl+u (delete to the start) first.
        Binding("ctrl+u", "upload", "Upload a file", show=False, priority=True),
    ]

    def __init__(self, title: str, choices: list[str], current: str, upload: bool = False) -> None:
        super().__init__()
        self._title = title
        self._choices = choices
        self._current = current
        self._upload = upload

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self._title), classes="panel-title")
            yield Input(placeholder="type to filter, e.g. xl lora", id="choice-filter")
            yield OptionList(id="choice-list")
            upload = " · ctrl+u uploads a file" if self._upload else ""
            yield Label(f"Enter picks · ↑↓ move · Esc cancels{upload}", classes="hint")

    def on_mount(self) -> None:
        self._fill("")
        options = self.query_one(OptionList)
        if self._current in self._choices[:SHOWN]:
            options.highlighted = self._choices.index(self._current) + (1 if self._upload else 0)
        self.query_one(Input).focus()

    def _fill(self, query: str) -> None:
        found = matches(self._choices, query)
        options = self.query_one(OptionList)
        options.clear_options()
        if self._upload:
            options.add_option(Option(Text("⇪ Upload an image from this computer…", style="bold"), id=UPLOAD))
        options.add_options([Option(Text(c), id=c) for c in found[:SHOWN]])
        if len(found) > SHOWN:
            options.add_option(Option(Text(f"… {len(found) - SHOWN} more: type to narrow", style="dim"),
                                      disabled=True))
        if not found and not self._upload:
            options.add_option(Option(Text("nothing matches", style="dim"), disabled=True))
        options.highlighted = 1 if self._upload and found and query else 0

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self._pick(options.get_option_at_index(options.highlighted))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._pick(event.option)

    def _pick(self, option: Option) -> None:
        if not option.disabled and option.id is not None:
            self.dismiss(option.id)

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            options.highlighted = ((options.highlighted or 0) + step) % options.option_count

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self._upload if action == "upload" else True

    def action_upload(self) -> None:
        self.dismiss(UPLOAD)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceInput(Input):
    """An input over a list of allowed values; ↓ opens the filtered list."""

    BINDINGS = [Binding("down", "pick", "Pick from the list", show=False)]

    class UploadWanted(Message):
        """The user asked to upload an image for ``field``."""

        def __init__(self, field: ChoiceInput) -> None:
            super().__init__()
            self.field = field

    def __init__(self, value: str, choices: list[str], *, title: str, upload: bool = False,
                 id: str | None = None, classes: str | None = None) -> None:
        hint = f"↓ pick from {len(choices)}" + (" or upload" if upload else "")
        super().__init__(value, placeholder=hint, id=id, classes=classes,
                         suggester=SuggestFromList(choices, case_sensitive=False))
        self.choices = choices
        self.upload = upload
        self.title = title
        self.tooltip = hint

    def action_pick(self) -> None:
        self.app.push_screen(ChoiceScreen(self.title, self.choices, self.value, self.upload), self._picked)

    def _picked(self, choice: str | None) -> None:
        if choice == UPLOAD:
            self.post_message(self.UploadWanted(self))
        elif choice is not None:
            self.value = choice
            self.focus()
