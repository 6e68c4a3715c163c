"""Fix screen: missing custom nodes and models, step by step (Nodes → Restart → Models → Verify)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll

from pistachio_tui.ui.screens.base import PistachioScreen
from pistachio_tui.ui.widgets.coming_panel import ComingPanel

COMING = """\
[b]Nodes[/b]    find the node pack for each missing class and install it through ComfyUI-Manager
[b]Restart[/b]  restart the server and wait for it to come back, with a timer
[b]Models[/b]   propose the exact file and folder for each missing model, download with progress
[b]Verify[/b]   validate again until the workflow is green

Today: run [b]pistachio fix <workflow>[/b] in a shell — the same flow, headless."""


class FixScreen(PistachioScreen):
    """Guided repair of a workflow the server rejects."""

    MODE = "fix"
    CSS_PATH = "fix.tcss"
    SUMMARY = "Repair missing nodes and models (coming; use `pistachio fix` today)"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="fix-body"):
            yield ComingPanel("Fix flow — what's coming", COMING)
