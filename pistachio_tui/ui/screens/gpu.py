"""GPU screen: hosts the ``GpuView`` (VRAM, utilisation, temperature, power per device over time)."""

from __future__ import annotations

from textual.app import ComposeResult

from pistachio_tui.ui.screens.base import PistachioScreen
from pistachio_tui.ui.views import CSS_FILES
from pistachio_tui.ui.views.gpu import COMMANDS, GpuView


class GpuScreen(PistachioScreen):
    """Per-device panels for every configured server."""

    MODE = "gpu"
    CSS_PATH = ["gpu.tcss", *CSS_FILES]
    SUMMARY = "VRAM of every server's devices over time, peaks, free memory"
    VIEW_CLASS = GpuView
    VIEW_COMMANDS = COMMANDS

    def compose_body(self) -> ComposeResult:
        # Local NVML readings plug in as ``local_source`` once the sampler exists.
        yield GpuView(self.papp.settings, id="gpu-view")
