"""The sampler for GPUs this process cannot see through NVML: a ComfyUI server's devices.

It is decoupled from the client: it takes an async callable returning
:class:`~pistachio_tui.comfy.types.SystemStats` (e.g. an app session's
``client.system_stats``, so no second connection is opened per server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pistachio_tui.gpu.source import GpuSource, SeriesShape

if TYPE_CHECKING:
    from pistachio_tui.comfy.types import SystemStats

StatsSource = Callable[[], Awaitable["SystemStats"]]
#: Returns what is running on the server now (a prompt id or a label), None when idle.
RunningSource = Callable[[], Awaitable[str | None]]


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class ServerSampler:
    """Polls one ComfyUI server's ``/system_stats``: VRAM and torch VRAM per device, RAM.

    A failed poll marks the server (and its devices) down with the error's
    message; history is kept and the next good poll brings it back.
    """

    def __init__(self, name: str, stats: StatsSource, *, running: RunningSource | None = None,
                 timeout: float = 10.0, shape: SeriesShape | None = None) -> None:
        self.name = name
        #: Where the figures come from (compared by the GPU screen to see if a session's client changed).
        self.stats = stats
        self._running = running
        self._timeout = timeout
        self._shape = shape or SeriesShape()
        self.devices: dict[int, GpuSource] = {}
        self.ram = self._shape.new()
        self.ram_total: int | None = None
        self.up = True
        self.reason: str | None = None
        self.polled = False

    async def sample(self, t: float) -> None:
        """Poll once at time ``t``; never raises for a server or stats failure."""
        try:
            stats = await asyncio.wait_for(self.stats(), self._timeout)
        except (asyncio.TimeoutError, TimeoutError):
            self.mark_down(f"ComfyUI server {self.name} did not answer /system_stats within {self._timeout:g} s")
            return
        except Exception as exc:  # any client error: the message is already for a person
            self.mark_down(_reason(exc))
            return
        running = await self._current_prompt()
        self.up, self.reason, self.polled = True, None, True
        self.ram_total = stats.ram_total
        self.ram.append(t, float(stats.ram_total - stats.ram_free))
        for position, device in enumerate(stats.devices):
            index = device.index if device.index is not None else position
            source = self.devices.get(index)
            if source is None:
                source = self.devices[index] = GpuSource(
                    f"server:{self.name}:{index}", "server", f"{self.name} · {device.name}",
                    device_type=device.type, shape=self._shape)
            source.record(
                t,
                memory_used=device.vram_total - device.vram_free,
                memory_total=device.vram_total,
                torch_used=device.torch_vram_total - device.torch_vram_free,
                torch_total=device.torch_vram_total,
                running_prompt=running,
            )

    async def _current_prompt(self) -> str | None:
        if self._running is None:
            return None
        try:
            return await asyncio.wait_for(self._running(), self._timeout)
        except Exception:  # a missing prompt label must not mark a healthy server down
            return None

    def mark_down(self, reason: str) -> None:
        self.up, self.reason, self.polled = False, reason, True
        for source in self.devices.values():
            source.mark_down(reason)
