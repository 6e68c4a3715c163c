"""What every main screen shares: header, navigation bar, footer, session refreshes."""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from pistachio_tui.comfy.session import ServerSession, SessionUpdate
from pistachio_tui.ui.messages import SessionChanged
from pistachio_tui.ui.widgets.fitted_footer import FittedFooter
from pistachio_tui.ui.widgets.nav_bar import NavBar
from pistachio_tui.ui.widgets.status_header import StatusHeader

if TYPE_CHECKING:
    from pistachio_tui.ui.app import PistachioApp


class PistachioScreen(Screen):
    """A main screen; subclasses compose their body and redraw in :meth:`refresh_view`."""

    BINDINGS = [Binding("escape", "leave_input", "Leave the field", show=False)]

    MODE: ClassVar[str] = ""
    #: One line for the help screen.
    SUMMARY: ClassVar[str] = ""

    @property
    def papp(self) -> PistachioApp:
        # Textual types ``app`` as any App; these only ever run inside PistachioApp.
        return cast("PistachioApp", self.app)

    @property
    def session(self) -> ServerSession | None:
        manager = self.papp.manager
        return manager.active if manager else None

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield NavBar(self.MODE)
        yield from self.compose_body()
        yield FittedFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def refresh_view(self, update: SessionUpdate | None) -> None:
        """Redraw from the sessions; ``update`` is None for a full redraw."""

    def on_session_changed(self, message: SessionChanged) -> None:
        self.query_one(StatusHeader).refresh_header()
        self.refresh_view(message.update)

    def on_screen_resume(self) -> None:
        self.query_one(StatusHeader).refresh_header()
        self.refresh_view(None)

    def action_leave_input(self) -> None:
        """Esc in a text field hands the keys back to the screen (1–8, its one-letter keys)."""
        if isinstance(self.focused, Input):
            home = next((w for w in self.focus_chain if not isinstance(w, Input)), None)
            self.set_focus(home)

    def require_session(self) -> ServerSession | None:
        """The active session, or None after telling the user there is none."""
        session = self.session
        if session is None:
            self.notify("No server yet: add one on the Servers screen (1, then a).", severity="warning")
        return session


class ViewScreen(PistachioScreen):
    """A main screen whose body is one domain view (GPU, Pods, Training, Fix, Batch).

    A subclass names the view class (its bindings are listed in help, its
    ``VIEW_COMMANDS`` offered in the palette) and builds it in :meth:`make_view`.
    Styles come from the domain folder, next to the subclass: ``view.tcss``, plus
    ``screen.tcss`` where the screen adds widgets of its own.
    """

    CSS_PATH: ClassVar[str | PurePath | list[str | PurePath] | None] = "view.tcss"
    DEFAULT_CSS = """
    ViewScreen > .domain-view { height: 1fr; }
    """
    VIEW_CLASS: ClassVar[type[Widget]]
    #: (palette title, help text, action name on the view).
    VIEW_COMMANDS: ClassVar[list[tuple[str, str, str]]] = []

    def compose_body(self) -> ComposeResult:
        view = self.make_view()
        if view is not None:
            view.add_class("domain-view")
            yield view

    def make_view(self) -> Widget | None:
        """The view this screen shows from the start (None: it is mounted later, e.g. Fix)."""
        raise NotImplementedError

    def run_view_action(self, action: str) -> None:
        """Run an action of the hosted view, if it is showing."""
        views = list(self.query(self.VIEW_CLASS))
        if views:
            self.run_worker(views[0].run_action(action))
        else:
            self.notify("Nothing to act on here yet.", severity="warning")
