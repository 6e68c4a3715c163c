"""This machine's NVIDIA GPUs through NVML (``pynvml`` from nvidia-ml-py).

The NVML module is injected (default: ``import pynvml`` on first use) so tests
pass a fake. Every per-field call may raise ``NVMLError_NotSupported`` (or any
other NVML error) on some boards: that field becomes None and the sample goes
on. A machine without the driver gets :class:`NvmlUnavailable` with a sentence
for a person, never a traceback. Calls are blocking C: run :meth:`NvmlReader.read`
in a thread (the hub does, with ``asyncio.to_thread``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")

_OFF = "local GPU graphs are off; remote servers still work"
NO_DRIVER = f"No NVIDIA driver found on this machine — {_OFF}"
NO_BINDINGS = f"The NVML Python bindings (nvidia-ml-py) are not installed — {_OFF}"


class NvmlUnavailable(Exception):
    """NVML cannot be used here; ``reason`` (also the message) says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ProcessUsage:
    """A process holding GPU memory. ``name`` is None when /proc hides it (other users, containers)."""

    pid: int
    name: str | None
    used_bytes: int | None


@dataclass(frozen=True)
class GpuSample:
    """One reading of one GPU. Every figure the board does not report is None; memory in bytes."""

    index: int
    name: str | None
    uuid: str | None
    memory_used: int | None
    memory_total: int | None
    util_gpu: float | None
    util_memory: float | None
    temperature_c: float | None
    power_w: float | None
    power_limit_w: float | None
    fan_percent: float | None
    processes: tuple[ProcessUsage, ...] = ()


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def process_name(pid: int, proc_root: Path = Path("/proc")) -> str | None:
    """The command name of ``pid`` from ``/proc/<pid>/comm``; None if gone or not ours to read."""
    try:
        return (proc_root / str(pid) / "comm").read_text(errors="replace").strip() or None
    except OSError:
        return None


class NvmlReader:
    """Reads every local GPU; opens NVML on first use and keeps it open until :meth:`close`.

    ``nvml`` is the pynvml module or a stand-in with the same names. Thread-safe:
    a lock serialises open/read/close so a worker thread and a close never interleave.
    """

    def __init__(self, nvml: ModuleType | Any | None = None, *, proc_root: Path = Path("/proc")) -> None:
        self._nvml = nvml
        self._proc_root = proc_root
        self._open = False
        self._lock = threading.Lock()

    def _module(self) -> Any:
        if self._nvml is None:
            try:
                import pynvml
            except ImportError as exc:
                raise NvmlUnavailable(NO_BINDINGS) from exc
            self._nvml = pynvml
        return self._nvml

    def _init(self) -> Any:
        nvml = self._module()
        if self._open:
            return nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            no_driver = {nvml.NVML_ERROR_LIBRARY_NOT_FOUND, nvml.NVML_ERROR_DRIVER_NOT_LOADED}
            if getattr(exc, "value", None) in no_driver:
                raise NvmlUnavailable(NO_DRIVER) from exc
            raise NvmlUnavailable(f"The NVIDIA driver did not start ({exc}) — {_OFF}") from exc
        except OSError as exc:
            raise NvmlUnavailable(f"The NVIDIA driver library could not be loaded ({exc}) — {_OFF}") from exc
        self._open = True
        return nvml

    def open(self) -> None:
        """Start NVML now; raises :class:`NvmlUnavailable` with the reason if it cannot."""
        with self._lock:
            self._init()

    def read(self) -> list[GpuSample]:
        """One sample of every GPU (blocking). Raises :class:`NvmlUnavailable` when NVML is off."""
        with self._lock:
            nvml = self._init()
            try:
                count = nvml.nvmlDeviceGetCount()
            except nvml.NVMLError as exc:
                raise NvmlUnavailable(f"NVML could not count the GPUs ({exc}) — {_OFF}") from exc
            return [self._sample(nvml, i) for i in range(count)]

    def close(self) -> None:
        """Shut NVML down (safe to call twice or when it never opened)."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            nvml = self._module()
            try:
                nvml.nvmlShutdown()
            except nvml.NVMLError:
                pass  # shutting down a driver that vanished: nothing left to release

    def _sample(self, nvml: Any, index: int) -> GpuSample:
        def field(call: Callable[[], T]) -> T | None:
            try:
                return call()
            except nvml.NVMLError:
                return None

        handle = field(lambda: nvml.nvmlDeviceGetHandleByIndex(index))
        if handle is None:
            return GpuSample(index, None, None, None, None, None, None, None, None, None, None)
        memory = self._memory(nvml, handle, field)
        util = field(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        power_mw = field(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        limit_mw = field(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        name = field(lambda: nvml.nvmlDeviceGetName(handle))
        uuid = field(lambda: nvml.nvmlDeviceGetUUID(handle))
        temperature = field(lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        fan = field(lambda: nvml.nvmlDeviceGetFanSpeed(handle))
        processes = field(lambda: nvml.nvmlDeviceGetComputeRunningProcesses(handle)) or []
        return GpuSample(
            index=index,
            name=_text(name) if name is not None else None,
            uuid=_text(uuid) if uuid is not None else None,
            memory_used=memory[0],
            memory_total=memory[1],
            util_gpu=float(util.gpu) if util is not None else None,
            util_memory=float(util.memory) if util is not None else None,
            temperature_c=float(temperature) if temperature is not None else None,
            power_w=power_mw / 1000 if power_mw is not None else None,
            power_limit_w=limit_mw / 1000 if limit_mw is not None else None,
            fan_percent=float(fan) if fan is not None else None,
            processes=tuple(
                ProcessUsage(p.pid, process_name(p.pid, self._proc_root), getattr(p, "usedGpuMemory", None))
                for p in processes
            ),
        )

    @staticmethod
    def _memory(nvml: Any, handle: Any, field: Callable[[Callable[[], Any]], Any]) -> tuple[int | None, int | None]:
        # v2 leaves the driver's reserved memory out of "used", which matches what
        # nvidia-smi shows; older drivers/bindings only answer v1.
        info = None
        if hasattr(nvml, "nvmlMemory_v2"):
            info = field(lambda: nvml.nvmlDeviceGetMemoryInfo(handle, version=nvml.nvmlMemory_v2))
        if info is None:
            info = field(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        if info is None:
            return None, None
        return int(info.used), int(info.total)
