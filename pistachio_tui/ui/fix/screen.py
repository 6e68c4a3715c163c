"""Fix screen: hosts the ``FixView`` for the workflow handed over from the Workflows screen."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical

from pistachio_tui.comfy.session import ServerSession
from pistachio_tui.ui.base import ViewScreen
from pistachio_tui.ui.fix.view import COMMANDS, FixView
from pistachio_tui.ui.widgets.coming_panel import ComingPanel
from pistachio_tui.workflow.load import Workflow

#: The four steps, each with what it does.
STEPS = [
    ("Nodes", "find the node pack for each missing class and install it through ComfyUI-Manager"),
    ("Restart", "restart the server and wait for it to come back"),
    ("Models", "find the exact file and folder for each missing model, download with progress"),
    ("Verify", "validate again until the server accepts the workflow"),
]


def how() -> Group:
    """What the screen does, before a workflow is handed over: the steps in two columns, so a
    description that wraps at 80 columns stays under its own column."""
    steps = Table.grid(padding=(0, 2))
    steps.add_column(style="bold", no_wrap=True)
    steps.add_column()
    for name, what in STEPS:
        steps.add_row(name, what)
    return Group(steps, "", Text.from_markup(
        "Open a workflow on the Workflows screen (2) and press [b]f[/b] to fix it on the active server.\n"
        "Headless: [b]pistachio fix <workflow>[/b]."))


class FixScreen(ViewScreen):
    """Guided repair of a workflow the server rejects."""

    MODE = "fix"
    CSS_PATH = ["screen.tcss", "view.tcss"]
    SUMMARY = "Repair missing nodes and models: Nodes → Restart → Models → Verify"
    VIEW_CLASS = FixView
    VIEW_COMMANDS = COMMANDS

    def compose_body(self) -> ComposeResult:
        with Vertical(id="fix-body"):
            yield ComingPanel("Fix a workflow", how())

    def make_view(self) -> None:
        return None  # mounted by :meth:`fix` once a workflow is handed over

    async def fix(self, session: ServerSession, workflow: Workflow) -> None:
        """Show the fix flow for ``workflow`` on ``session``'s server (replacing any earlier one)."""
        body = self.query_one("#fix-body")
        await body.remove_children()
        view = FixView(self.papp.settings, session.client, workflow, id="fix-view")
        await body.mount(view)
        # The view's keys (s start, x cancel…) work while focus is inside it.
        target = next((w for w in view.query("*") if w.focusable), None)
        if target is not None:
            target.focus()
