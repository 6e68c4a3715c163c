"""A stand-in for the ``pynvml`` module: same function names, error classes and codes.

Build one with devices and pass it where a pynvml module is expected::

    nvml = FakeNvml([FakeGpu("NVIDIA GeForce RTX 4090", memory_used=[1 * GIB, 8 * GIB]),
                     FakeGpu("NVIDIA A100 80GB PCIe", fan=NOT_SUPPORTED)])
    reader = NvmlReader(nvml)

A field holds a constant, a list (the value for the n-th read, the last one
repeated afterwards; a read starts with ``nvmlDeviceGetCount``), or an NVML
error class to raise (:data:`NOT_SUPPORTED`...). ``FakeNvml(init_error=...)``
makes ``nvmlInit`` fail like a machine without the driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

GIB = 1024 ** 3

NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_ERROR_UNKNOWN = 999
NVML_TEMPERATURE_GPU = 0
nvmlMemory_v2 = 0x02000028


class NVMLError(Exception):
    """Like pynvml's: ``value`` is the NVML_ERROR_* code; subclasses per code."""

    value = NVML_ERROR_UNKNOWN

    def __init__(self, value: int | None = None) -> None:
        if value is not None:
            self.value = value
        super().__init__(self.value)

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"Unknown Error ({self.value})")


def _error_class(name: str, code: int) -> type[NVMLError]:
    return type(name, (NVMLError,), {"value": code})


NVMLError_Uninitialized = _error_class("NVMLError_Uninitialized", NVML_ERROR_UNINITIALIZED)
NVMLError_NotSupported = _error_class("NVMLError_NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_NoPermission = _error_class("NVMLError_NoPermission", NVML_ERROR_NO_PERMISSION)
NVMLError_DriverNotLoaded = _error_class("NVMLError_DriverNotLoaded", NVML_ERROR_DRIVER_NOT_LOADED)
NVMLError_LibraryNotFound = _error_class("NVMLError_LibraryNotFound", NVML_ERROR_LIBRARY_NOT_FOUND)
NVMLError_FunctionNotFound = _error_class("NVMLError_FunctionNotFound", NVML_ERROR_FUNCTION_NOT_FOUND)
NVMLError_GpuIsLost = _error_class("NVMLError_GpuIsLost", NVML_ERROR_GPU_IS_LOST)
NVMLError_ArgumentVersionMismatch = _error_class(
    "NVMLError_ArgumentVersionMismatch", NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
NVMLError_Unknown = _error_class("NVMLError_Unknown", NVML_ERROR_UNKNOWN)

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH: "Argument version mismatch",
}

#: Put in a field to make that call raise NotSupported.
NOT_SUPPORTED = NVMLError_NotSupported


@dataclass
class FakeGpu:
    """One fake board. Memory in bytes, power in milliwatts (as NVML reports it)."""

    name: str = "NVIDIA GeForce RTX 4090"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    memory_total: Any = 24 * GIB
    memory_used: Any = 2 * GIB
    util_gpu: Any = 0
    util_memory: Any = 0
    temperature: Any = 40
    power_mw: Any = 60_000
    power_limit_mw: Any = 450_000
    fan: Any = 30
    #: (pid, usedGpuMemory or None) pairs — a fixed list (not scripted), or an error class.
    processes: Any = field(default_factory=list)
    #: Raise this from the v2 memory call (old drivers) so the v1 fallback is used.
    memory_v2_error: type[NVMLError] | None = None
    #: Raise this from nvmlDeviceGetHandleByIndex.
    handle_error: type[NVMLError] | None = None


class FakeNvml:
    """The fake module. Attributes mirror pynvml; ``inits``, ``shutdowns`` and ``reads`` count calls for assertions."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_NoPermission = NVMLError_NoPermission
    NVMLError_DriverNotLoaded = NVMLError_DriverNotLoaded
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_FunctionNotFound = NVMLError_FunctionNotFound
    NVMLError_GpuIsLost = NVMLError_GpuIsLost
    NVMLError_Uninitialized = NVMLError_Uninitialized
    NVMLError_Unknown = NVMLError_Unknown
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_NO_PERMISSION = NVML_ERROR_NO_PERMISSION
    NVML_ERROR_DRIVER_NOT_LOADED = NVML_ERROR_DRIVER_NOT_LOADED
    NVML_ERROR_LIBRARY_NOT_FOUND = NVML_ERROR_LIBRARY_NOT_FOUND
    NVML_ERROR_FUNCTION_NOT_FOUND = NVML_ERROR_FUNCTION_NOT_FOUND
    NVML_ERROR_GPU_IS_LOST = NVML_ERROR_GPU_IS_LOST
    NVML_ERROR_UNINITIALIZED = NVML_ERROR_UNINITIALIZED
    NVML_ERROR_UNKNOWN = NVML_ERROR_UNKNOWN
    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU
    nvmlMemory_v2 = nvmlMemory_v2

    def __init__(self, gpus: list[FakeGpu] | None = None, *, init_error: type[NVMLError] | None = None) -> None:
        self.gpus = list(gpus or [])
        self.init_error = init_error
        self.reads = -1
        self.inits = 0
        self.shutdowns = 0
        self._ready = False

    def _value(self, value: Any) -> Any:
        if isinstance(value, type) and issubclass(value, NVMLError):
            raise value()
        if isinstance(value, list):
            return value[min(max(self.reads, 0), len(value) - 1)] if value else None
        return value

    def _gpu(self, handle: Any) -> FakeGpu:
        if not self._ready:
            raise NVMLError_Uninitialized()
        return self.gpus[handle]

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error()
        self.inits += 1
        self._ready = True

    def nvmlShutdown(self) -> None:
        if not self._ready:
            raise NVMLError_Uninitialized()
        self.shutdowns += 1
        self._ready = False

    def nvmlDeviceGetCount(self) -> int:
        if not self._ready:
            raise NVMLError_Uninitialized()
        self.reads += 1
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        gpu = self._gpu(index)
        if gpu.handle_error is not None:
            raise gpu.handle_error()
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self._value(self._gpu(handle).name)

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self._value(self._gpu(handle).uuid)

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> SimpleNamespace:
        gpu = self._gpu(handle)
        if version is not None and gpu.memory_v2_error is not None:
            raise gpu.memory_v2_error()
        total, used = self._value(gpu.memory_total), self._value(gpu.memory_used)
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        gpu = self._gpu(handle)
        return SimpleNamespace(gpu=self._value(gpu.util_gpu), memory=self._value(gpu.util_memory))

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return self._value(self._gpu(handle).temperature)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return self._value(self._gpu(handle).power_mw)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return self._value(self._gpu(handle).power_limit_mw)

    def nvmlDeviceGetFanSpeed(self, handle: int) -> int:
        return self._value(self._gpu(handle).fan)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        pairs = self._gpu(handle).processes
        if isinstance(pairs, type):
            raise pairs()
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in pairs]


def two_gpus() -> FakeNvml:
    """A ready-made machine: a busy RTX 4090 (no fan reading) and an idle A100."""
    return FakeNvml([
        FakeGpu("NVIDIA GeForce RTX 4090", "GPU-4090", memory_used=[4 * GIB, 12 * GIB, 23 * GIB],
                util_gpu=[10, 99, 100], temperature=71, power_mw=402_000, fan=NOT_SUPPORTED),
        FakeGpu("NVIDIA A100 80GB PCIe", "GPU-a100", memory_total=80 * GIB, memory_used=2 * GIB,
                power_limit_mw=300_000, fan=NOT_SUPPORTED),
    ])
