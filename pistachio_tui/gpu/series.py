"""Fixed-size time series: a ring buffer with timestamps, and one that also keeps its peak.

Memory never grows after construction: every buffer is preallocated, so a
monitor left open for days costs the same as one open for a minute.
"""

from __future__ import annotations

import math
from array import array


class Series:
    """The last ``capacity`` (timestamp, value) samples; O(1) append, oldest dropped first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a series needs room for at least one sample, got capacity={capacity}")
        self.capacity = capacity
        self._times = array("d", bytes(8 * capacity))
        self._values = array("d", bytes(8 * capacity))
        self._start = 0
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def append(self, t: float, value: float) -> None:
        """Add a sample taken at ``t`` (seconds); drops the oldest once full."""
        end = (self._start + self._len) % self.capacity
        self._times[end] = t
        self._values[end] = value
        if self._len < self.capacity:
            self._len += 1
        else:
            self._start = (self._start + 1) % self.capacity

    def _ordered(self, buf: array) -> list[float]:
        head = buf[self._start:self._start + self._len].tolist()
        wrapped = self._len - len(head)
        return head + buf[:wrapped].tolist() if wrapped else head

    def values(self) -> list[float]:
        """Values oldest first."""
        return self._ordered(self._values)

    def times(self) -> list[float]:
        """Timestamps oldest first, aligned with :meth:`values`."""
        return self._ordered(self._times)

    def last(self) -> float | None:
        """The newest value, None while empty."""
        if not self._len:
            return None
        return self._values[(self._start + self._len - 1) % self.capacity]

    def last_time(self) -> float | None:
        """When the newest value was taken, None while empty."""
        if not self._len:
            return None
        return self._times[(self._start + self._len - 1) % self.capacity]

    def peak(self) -> float | None:
        """The largest value still held, None while empty."""
        return max(self.values()) if self._len else None

    def mean(self) -> float | None:
        """The mean of the values still held, None while empty."""
        return math.fsum(self.values()) / self._len if self._len else None

    def clear(self) -> None:
        """Forget every sample (the buffer is kept)."""
        self._start = 0
        self._len = 0


class PeakSeries:
    """The last ``capacity`` samples plus the largest value seen since creation or :meth:`reset_peak`.

    The peak survives samples ageing out, so "the peak of this session" is not lost
    once the graph's window has moved on.
    """

    def __init__(self, capacity: int) -> None:
        self.recent = Series(capacity)
        self._peak: float | None = None

    def __len__(self) -> int:
        return len(self.recent)

    def append(self, t: float, value: float) -> None:
        self.recent.append(t, value)
        if self._peak is None or value > self._peak:
            self._peak = value

    def values(self) -> list[float]:
        return self.recent.values()

    def times(self) -> list[float]:
        return self.recent.times()

    def last(self) -> float | None:
        return self.recent.last()

    def mean(self) -> float | None:
        return self.recent.mean()

    def peak(self) -> float | None:
        """The largest value seen since creation or :meth:`reset_peak`, incl. samples aged out."""
        return self._peak

    def reset_peak(self) -> None:
        """Restart the peak from the samples still held."""
        self._peak = self.recent.peak()
