"""Pods screen: hosts the RunPod ``PodsView`` and adds the servers it hands over."""

from __future__ import annotations

from textual.app import ComposeResult

from pistachio_tui.ui.base import PistachioScreen
from pistachio_tui.ui.pods.view import COMMANDS, PodsView


class PodsScreen(PistachioScreen):
    """RunPod pods: cost, start/stop/terminate, prices, a pod's ComfyUI as a server."""

    MODE = "pods"
    CSS_PATH = ["screen.tcss", "view.tcss"]
    SUMMARY = "RunPod pods: cost, start/stop/terminate, open a pod's ComfyUI"
    VIEW_CLASS = PodsView
    VIEW_COMMANDS = COMMANDS

    def compose_body(self) -> ComposeResult:
        yield PodsView(self.papp.settings, id="pods-view")

    def on_pods_view_add_server(self, message: PodsView.AddServer) -> None:
        self.papp.add_server(message.server)
