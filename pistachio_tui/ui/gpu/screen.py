"""GPU screen: hosts the ``GpuView`` over a ``GpuHub`` fed by this machine's NVML and the app's sessions."""

from __future__ import annotations

from typing import Any

from textual import on

from pistachio_tui.comfy.session import ServerSession, SessionUpdate, UpdateKind
from pistachio_tui.gpu.hub import GpuHub
from pistachio_tui.gpu.nvml import NvmlReader
from pistachio_tui.ui.base import ViewScreen
from pistachio_tui.ui.gpu.view import COMMANDS, GpuView


class GpuScreen(ViewScreen):
    """Per-device history graphs for this machine's GPUs and every configured server."""

    MODE = "gpu"
    SUMMARY = "GPUs of this machine and every server: VRAM, utilisation, temperature, power over time"
    VIEW_CLASS = GpuView
    VIEW_COMMANDS = COMMANDS
    #: The NVML module; None imports pynvml on first sample. Tests put a fake here so a
    #: machine with a GPU draws the same screens as one without.
    NVML: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.hub = GpuHub(interval=self.papp.settings.gpu_interval)
        self.hub.add_local(NvmlReader(self.NVML))
        self._follow_sessions()

    def make_view(self) -> GpuView:
        return GpuView(self.hub, id="gpu-view")

    def _follow_sessions(self) -> None:
        """Sample every session's server through its own client: no second connection per server."""
        sessions = self.papp.manager.sessions
        for name in set(self.hub.servers) - set(sessions):
            self.hub.remove_server(name)
        for name, session in sessions.items():
            sampler = self.hub.servers.get(name)
            if sampler is None or sampler.stats != session.client.system_stats:
                self.hub.add_server(name, session.client.system_stats, running=self._running_on(session))

    @staticmethod
    def _running_on(session: ServerSession):
        async def running() -> str | None:
            state = session.running()
            return state.prompt_id if state else None
        return running

    def refresh_view(self, update: SessionUpdate | None) -> None:
        if update is None or update.kind == UpdateKind.HEALTH:
            self._follow_sessions()

    @on(GpuView.FreeMemory)
    def _free(self, message: GpuView.FreeMemory) -> None:
        session = self.papp.manager.sessions.get(message.server)
        if session is not None:
            self.papp.server_call(session.free(), f"{session.name} unloaded its models and freed cached memory")

    async def on_unmount(self) -> None:
        await self.hub.aclose()
