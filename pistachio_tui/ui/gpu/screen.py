"""GPU screen: hosts the ``GpuView`` (VRAM, utilisation, temperature, power per device over time)."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import ComposeResult

from pistachio_tui.gpu.nvml import NvmlReader
from pistachio_tui.ui.base import PistachioScreen
from pistachio_tui.ui.gpu.view import COMMANDS, GpuView, nvml_source


class GpuScreen(PistachioScreen):
    """Per-device panels for this machine's GPUs and every configured server."""

    MODE = "gpu"
    CSS_PATH = ["screen.tcss", "view.tcss"]
    SUMMARY = "VRAM of local GPUs and every server's devices over time, peaks, free memory"
    VIEW_CLASS = GpuView
    VIEW_COMMANDS = COMMANDS
    #: The NVML module; None imports pynvml on first sample. Tests put a fake here so a
    #: machine with a GPU draws the same screens as one without.
    NVML: Any = None

    def __init__(self) -> None:
        super().__init__()
        self._reader = NvmlReader(self.NVML)

    def compose_body(self) -> ComposeResult:
        yield GpuView(self.papp.settings, local_source=nvml_source(self._reader), running=self._running_prompt,
                      id="gpu-view")

    def _running_prompt(self, server: str) -> str | None:
        session = self.papp.manager.sessions.get(server)
        state = session.running() if session else None
        return state.prompt_id if state else None

    async def on_unmount(self) -> None:
        # NVML may block on a wedged driver: never on the event loop.
        await asyncio.to_thread(self._reader.close)
