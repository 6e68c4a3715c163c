"""The GPU hub: owns every sampler, polls them on one interval, and hands out snapshots.

Typical use (the GPU screen, ``pistachio gpu``)::

    hub = GpuHub(interval=settings.gpu_interval)
    hub.add_local()                                   # NVML, lazily
    hub.add_server("local", client.system_stats, running=running_prompt)
    task = asyncio.create_task(hub.run())             # cancel to stop
    ...
    snap = hub.snapshot()                             # read on the event loop
    await hub.aclose()
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from pistachio_tui.failures import unexpected_reason
from pistachio_tui.gpu.nvml import NvmlReader, NvmlUnavailable
from pistachio_tui.gpu.remote import RunningSource, ServerSampler, StatsSource
from pistachio_tui.gpu.series import PeakSeries
from pistachio_tui.gpu.source import GpuSource, SeriesShape


class LocalSampler:
    """This machine's GPUs. Once NVML reports itself unavailable it is not asked again."""

    def __init__(self, reader: NvmlReader, shape: SeriesShape) -> None:
        self.reader = reader
        self._shape = shape
        self.devices: dict[int, GpuSource] = {}
        self.unavailable: str | None = None
        #: Why the latest read failed when NVML itself is there (retried every sample).
        self.error: str | None = None

    def mark_down(self, reason: str) -> None:
        """The latest read failed for ``reason``; the next sample tries again."""
        self.error = reason
        for down in self.devices.values():
            down.mark_down(reason)

    async def sample(self, t: float) -> None:
        """Read every GPU in a worker thread (NVML blocks) and record it at ``t``."""
        if self.unavailable is not None:
            return
        try:
            samples = await asyncio.to_thread(self.reader.read)
        except NvmlUnavailable as exc:
            self.unavailable = exc.reason
            for down in self.devices.values():
                down.mark_down(exc.reason)
            return
        except Exception as exc:
            # A driver hiccup NVML does not classify: show it and ask again next time.
            self.mark_down(unexpected_reason(exc))
            return
        self.error = None
        for s in samples:
            source = self.devices.get(s.index)
            if source is None:
                label = f"{s.name or 'GPU'} (#{s.index})"
                source = self.devices[s.index] = GpuSource(f"local:{s.index}", "local", label, shape=self._shape)
            source.record(
                t,
                memory_used=s.memory_used, memory_total=s.memory_total,
                util_percent=s.util_gpu, util_memory_percent=s.util_memory,
                temperature_c=s.temperature_c, power_w=s.power_w, power_limit_w=s.power_limit_w,
                fan_percent=s.fan_percent, processes=s.processes,
            )


@dataclass(frozen=True)
class ServerState:
    """A ComfyUI server as the hub last saw it; ``ram`` is RAM in use (bytes) over time."""

    name: str
    up: bool
    reason: str | None
    ram: PeakSeries
    ram_total: int | None


@dataclass(frozen=True)
class HubSnapshot:
    """Everything the GPU screen draws. ``sources`` are live objects: read them on the event loop."""

    taken_at: float
    local_unavailable: str | None
    sources: list[GpuSource]
    servers: list[ServerState]

    def get(self, key: str) -> GpuSource | None:
        return next((s for s in self.sources if s.key == key), None)


class GpuHub:
    """Polls local GPUs and ComfyUI servers every ``interval`` seconds."""

    def __init__(self, *, interval: float = 1.0, shape: SeriesShape | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if interval <= 0:
            raise ValueError(f"the GPU interval must be a positive number of seconds, got {interval}")
        self.interval = interval
        self.shape = shape or SeriesShape()
        self._clock = clock
        self.local: LocalSampler | None = None
        self.servers: dict[str, ServerSampler] = {}

    def add_local(self, reader: NvmlReader | None = None) -> LocalSampler:
        """Monitor this machine's GPUs (``reader`` defaults to real NVML, opened on first sample)."""
        self.local = LocalSampler(reader or NvmlReader(), self.shape)
        return self.local

    def add_server(self, name: str, stats: StatsSource, *, running: RunningSource | None = None,
                   timeout: float = 10.0) -> ServerSampler:
        """Monitor a ComfyUI server; ``stats`` is e.g. ``client.system_stats``. Replaces one of the same name."""
        sampler = ServerSampler(name, stats, running=running, timeout=timeout, shape=self.shape)
        self.servers[name] = sampler
        return sampler

    def remove_server(self, name: str) -> None:
        """Stop monitoring a server (removed from the settings); its history goes with it."""
        self.servers.pop(name, None)

    async def sample_once(self) -> None:
        """Poll every source once, concurrently, all stamped with the same time."""
        t = self._clock()
        samplers = list(self.servers.values())
        jobs = [s.sample(t) for s in samplers]
        if self.local is not None:
            jobs.append(self.local.sample(t))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        # A sampler that raised anyway (malformed figures, a bug) is shown down with the error;
        # letting it out would end ``run`` and freeze every graph with no word why.
        for sampler, result in zip(samplers, results):
            if isinstance(result, Exception):
                sampler.mark_down(unexpected_reason(result))
        if self.local is not None and isinstance(results[-1], Exception):
            self.local.mark_down(unexpected_reason(results[-1]))

    async def run(self) -> None:
        """Poll forever at :attr:`interval` (a slow poll delays the next one, never stacks). Cancel to stop."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.sample_once()
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    def snapshot(self) -> HubSnapshot:
        """Current sources in a stable order: local GPUs, then servers."""
        sources: list[GpuSource] = []
        if self.local is not None:
            sources += [self.local.devices[i] for i in sorted(self.local.devices)]
        for sampler in self.servers.values():
            sources += [sampler.devices[i] for i in sorted(sampler.devices)]
        servers = [ServerState(s.name, s.up, s.reason, s.ram, s.ram_total) for s in self.servers.values()]
        local_down = (self.local.unavailable or self.local.error) if self.local else None
        return HubSnapshot(self._clock(), local_down, sources, servers)

    def reset_peaks(self) -> None:
        """Forget every device's peak mark."""
        for source in self.snapshot().sources:
            source.reset_peak()

    async def aclose(self) -> None:
        """Shut NVML down (in a thread: it may block on a wedged driver)."""
        if self.local is not None:
            await asyncio.to_thread(self.local.reader.close)
