"""Modal form to add or edit a server: name, URL, optional auth header.

Enter moves to the next field and saves on the last; nothing is saved that the
app could not load again (the URL is checked as the settings file checks it).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from pistachio_tui.config import InvalidServerURL, ServerConfig, check_server_url


def parse_header(text: str) -> dict[str, str] | str:
    """``"Name: value"`` → a one-entry dict; empty → {}; anything else → an error message."""
    text = text.strip()
    if not text:
        return {}
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or not value.strip():
        return "Auth header must look like `Authorization: Bearer …`"
    return {name.strip(): value.strip()}


class ServerForm(ModalScreen[ServerConfig | None]):
    """Returns the new config, or None when cancelled."""

    CSS_PATH = "form.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, existing: ServerConfig | None = None, taken: set[str] | None = None) -> None:
        super().__init__()
        self.existing = existing
        self.taken = (taken or set()) - ({existing.name} if existing else set())

    def compose(self) -> ComposeResult:
        server = self.existing
        header = next(iter(server.headers.items()), None) if server else None
        with Vertical(id="form"):
            yield Label("Edit server" if server else "Add server", classes="panel-title")
            yield Label("Name")
            yield Input(server.name if server else "", placeholder="a short name, e.g. studio", id="name")
            yield Label("URL")
            yield Input(server.url if server else "", placeholder="address, e.g. http://127.0.0.1:8188", id="url")
            yield Label("Auth header (optional)")
            yield Input(f"{header[0]}: {header[1]}" if header else "", password=bool(header),
                        placeholder="none; e.g. Authorization: Bearer …", id="header")
            yield Static("Enter next field (saves on the last) · ctrl+s save · Esc cancel", classes="hint")
            yield Static("", id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query(Input))
        if event.input is inputs[-1]:
            self.action_save()
        else:
            inputs[inputs.index(event.input) + 1].focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        try:
            url: str | None = check_server_url(self.query_one("#url", Input).value)
            url_problem = ""
        except InvalidServerURL as exc:
            url, url_problem = None, str(exc)
        headers = parse_header(self.query_one("#header", Input).value)
        if not name:
            self._refuse("Name is required", "#name")
        elif name in self.taken:
            self._refuse(f"A server named {name!r} already exists", "#name")
        elif url is None:
            self._refuse(url_problem, "#url")
        elif isinstance(headers, str):
            self._refuse(headers, "#header")
        else:
            self.dismiss(ServerConfig(name, url, headers))

    def _refuse(self, problem: str, field: str) -> None:
        """Say what is wrong under the fields and put the cursor in the one to fix."""
        self.query_one("#form-error", Static).update(Text(problem, style="red"))
        self.query_one(field, Input).focus()
