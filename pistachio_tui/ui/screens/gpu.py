"""GPU screen: each server's devices with VRAM in use over time."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from pistachio_tui.comfy.session import SessionUpdate
from pistachio_tui.ui.screens.base import PistachioScreen
from pistachio_tui.ui.widgets.vram_panel import VramPanel

NOTE = ("VRAM from each server's /system_stats, sampled with the health poll. "
        "Local NVML graphs (utilisation, temperature, power) are coming.")


class GpuScreen(PistachioScreen):
    """Per-device panels for every configured server."""

    MODE = "gpu"
    CSS_PATH = "gpu.tcss"
    SUMMARY = "VRAM and RAM of every server's devices over time"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="gpu-body"):
            yield Static(NOTE, classes="hint")

    def refresh_view(self, update: SessionUpdate | None) -> None:
        if update is not None and update.kind != "health":
            return
        body = self.query_one("#gpu-body")
        panels = {panel.session.name: panel for panel in body.query(VramPanel)}
        sessions = self.papp.manager.sessions
        for name, panel in panels.items():
            if sessions.get(name) is not panel.session:
                panel.remove()
        for name, session in sessions.items():
            panel = panels.get(name)
            if panel is not None and panel.session is session:
                panel.show()
            else:
                body.mount(VramPanel(session))
