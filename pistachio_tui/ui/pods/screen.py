"""Pods screen: hosts the RunPod ``PodsView`` and adds the servers it hands over."""

from __future__ import annotations

from textual import on

from pistachio_tui.ui.base import ViewScreen
from pistachio_tui.ui.pods.view import COMMANDS, PodsView


class PodsScreen(ViewScreen):
    """RunPod pods: cost, start/stop/terminate, prices, a pod's ComfyUI as a server."""

    MODE = "pods"
    SUMMARY = "RunPod pods: cost, start/stop/terminate, open a pod's ComfyUI"
    VIEW_CLASS = PodsView
    VIEW_COMMANDS = COMMANDS

    def make_view(self) -> PodsView:
        # The app's one monitor: the dashboard reads the same client, idle guard and newest state.
        app = self.papp
        return PodsView(app.settings, client_factory=lambda: app.runpod().client,
                        monitor_factory=lambda _client: app.runpod(), comfy_http=app.runpod_http(), id="pods-view")

    @on(PodsView.AddServer)
    def _add_server(self, message: PodsView.AddServer) -> None:
        self.papp.add_server(message.server)
