"""Pods screen: RunPod pods with GPU, status, uptime, cost; start, stop, terminate."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll

from pistachio_tui.ui.screens.base import PistachioScreen
from pistachio_tui.ui.widgets.coming_panel import ComingPanel

COMING = """\
[b]Pods[/b]       GPU, status, uptime, $/h and spend; idle pods flagged
[b]Actions[/b]    start, stop, terminate (you type the pod name to confirm)
[b]ComfyUI[/b]    open a pod's ComfyUI as a server in one key

Today: [b]pistachio pods[/b] in a shell (needs RUNPOD_API_KEY)."""


class PodsScreen(PistachioScreen):
    """Rented GPUs on RunPod."""

    MODE = "pods"
    CSS_PATH = "pods.tcss"
    SUMMARY = "RunPod pods (coming; use `pistachio pods` today)"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="pods-body"):
            yield ComingPanel("Pods — what's coming", COMING)
