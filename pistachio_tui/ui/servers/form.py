"""Modal form to add or edit a server: name, URL, optional auth header."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from pistachio_tui.config import ServerConfig


def parse_header(text: str) -> dict[str, str] | str:
    """``"Name: value"`` → a one-entry dict; empty → {}; anything else → an error message."""
    text = text.strip()
    if not text:
        return {}
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or not value.strip():
        return "Auth header must look like `Authorization: Bearer …`"
    return {name.strip(): value.strip()}


def check_url(url: str) -> str | None:
    if not url.startswith(("http://", "https://")):
        return "URL must start with http:// or https:// (e.g. http://127.0.0.1:8188)"
    return None


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
            yield Input(server.name if server else "", placeholder="local", id="name")
            yield Label("URL")
            yield Input(server.url if server else "", placeholder="http://127.0.0.1:8188", id="url")
            yield Label("Auth header (optional)")
            yield Input(f"{header[0]}: {header[1]}" if header else "", password=bool(header),
                        placeholder="Authorization: Bearer …", id="header")
            yield Static("", id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def on_input_submitted(self) -> None:
        self.action_save()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        url = self.query_one("#url", Input).value.strip()
        headers = parse_header(self.query_one("#header", Input).value)
        problem = ("Name is required" if not name
                   else f"A server named {name!r} already exists" if name in self.taken
                   else check_url(url) or (headers if isinstance(headers, str) else None))
        if problem:
            self.query_one("#form-error", Static).update(Text(problem, style="red"))
            return
        self.dismiss(ServerConfig(name, url, headers))
