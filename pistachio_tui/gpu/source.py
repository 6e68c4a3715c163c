"""One monitored device (local GPU or ComfyUI server device): latest figures, series, peak, warning level."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pistachio_tui.gpu.nvml import ProcessUsage
from pistachio_tui.gpu.series import PeakSeries

#: VRAM use (fraction of total) from which a device is flagged.
WARN_AT = 0.90
CRITICAL_AT = 0.97

#: Metric names a source may carry in :attr:`GpuSource.series`.
METRICS = ("vram", "vram_percent", "torch_vram", "util", "temperature", "power")


class Level(str, Enum):
    """How close a device is to running out of VRAM."""

    OK = "ok"
    WARN = "warn"
    CRITICAL = "critical"


def level_for(fraction: float | None) -> Level:
    """The warning level for a VRAM fraction (0..1); unknown use is OK."""
    if fraction is None:
        return Level.OK
    if fraction >= CRITICAL_AT:
        return Level.CRITICAL
    if fraction >= WARN_AT:
        return Level.WARN
    return Level.OK


@dataclass(frozen=True)
class SeriesShape:
    """Size of every series a source creates: the last ``capacity`` samples (10 minutes at 1 s)."""

    capacity: int = 600

    def new(self) -> PeakSeries:
        return PeakSeries(self.capacity)


@dataclass
class GpuSource:
    """A device and what is known about it. Figures are None when not reported; memory in bytes.

    ``kind`` is ``"local"`` or ``"server"``. ``key`` is stable across
    samples (``local:0``, ``server:<name>:<index>``). ``series``
    maps a metric of :data:`METRICS` to its history; only reported metrics appear.
    When ``up`` is False, ``reason`` says why and the history is kept.
    """

    key: str
    kind: str
    label: str
    #: The torch device type a ComfyUI server reports ("cuda", "cpu", "mps"…); "" for a local GPU.
    device_type: str = ""
    shape: SeriesShape = field(default_factory=SeriesShape, repr=False)
    up: bool = True
    reason: str | None = None
    updated_at: float | None = None
    memory_used: int | None = None
    memory_total: int | None = None
    memory_percent: float | None = None
    torch_used: int | None = None
    torch_total: int | None = None
    util_percent: float | None = None
    util_memory_percent: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    fan_percent: float | None = None
    processes: tuple[ProcessUsage, ...] = ()
    running_prompt: str | None = None
    peak_percent: float | None = None
    peak_at: float | None = None
    peak_prompt: str | None = None
    series: dict[str, PeakSeries] = field(default_factory=dict, repr=False)

    @property
    def memory_fraction(self) -> float | None:
        """VRAM in use as 0..1 (from bytes when known, else the reported percentage)."""
        if self.memory_used is not None and self.memory_total:
            return self.memory_used / self.memory_total
        return self.memory_percent / 100 if self.memory_percent is not None else None

    @property
    def memory_name(self) -> str:
        """What the device's memory is called: a CPU device's memory is the machine's RAM."""
        return "RAM" if self.device_type == "cpu" else "VRAM"

    @property
    def level(self) -> Level:
        return level_for(self.memory_fraction)

    def record(self, t: float, **figures: Any) -> None:
        """Store the latest figures (attribute names) taken at ``t`` and extend the series."""
        for name, value in figures.items():
            setattr(self, name, value)
        self.up, self.reason, self.updated_at = True, None, t
        self._push(t, "vram", self.memory_used)
        self._push(t, "vram_percent", None if self.memory_fraction is None else self.memory_fraction * 100)
        self._push(t, "torch_vram", self.torch_used)
        self._push(t, "util", self.util_percent)
        self._push(t, "temperature", self.temperature_c)
        self._push(t, "power", self.power_w)
        fraction = self.memory_fraction
        if fraction is not None and (self.peak_percent is None or fraction * 100 > self.peak_percent):
            self.peak_percent, self.peak_at, self.peak_prompt = fraction * 100, t, self.running_prompt

    def _push(self, t: float, metric: str, value: float | None) -> None:
        if value is None:
            return
        if metric not in self.series:
            self.series[metric] = self.shape.new()
        self.series[metric].append(t, float(value))

    def mark_down(self, reason: str) -> None:
        """Flag the device unreachable; its history and last figures stay."""
        self.up, self.reason = False, reason

    def reset_peak(self) -> None:
        """Forget the peak mark (the series keep their data)."""
        self.peak_percent = self.peak_at = self.peak_prompt = None
        for series in self.series.values():
            series.reset_peak()

    def to_dict(self) -> dict[str, Any]:
        """Current figures as plain JSON-ready data (no series)."""
        return {
            "key": self.key, "kind": self.kind, "label": self.label, "device_type": self.device_type, "up": self.up, "reason": self.reason,
            "memory_used": self.memory_used, "memory_total": self.memory_total,
            "memory_fraction": self.memory_fraction, "level": self.level.value,
            "torch_used": self.torch_used, "torch_total": self.torch_total,
            "util_percent": self.util_percent, "util_memory_percent": self.util_memory_percent,
            "temperature_c": self.temperature_c, "power_w": self.power_w, "power_limit_w": self.power_limit_w,
            "fan_percent": self.fan_percent, "running_prompt": self.running_prompt,
            "peak_percent": self.peak_percent, "peak_prompt": self.peak_prompt,
            "processes": [{"pid": p.pid, "name": p.name, "used_bytes": p.used_bytes} for p in self.processes],
        }
