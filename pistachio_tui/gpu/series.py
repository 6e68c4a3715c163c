"""Fixed-size time series: a ring buffer with timestamps, and a two-tier variant for long runs.

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


class TieredSeries:
    """Recent samples at full rate plus bucket means over a long window.

    ``TieredSeries(600, bucket=10.0, long_capacity=8640)`` keeps 10 minutes at
    1 s and 24 hours of 10 s means. A bucket is closed (its mean appended to
    :attr:`long`) when a sample arrives past its end; the running peak survives
    the short tier so "peak today" is not lost to the averaging.
    """

    def __init__(self, capacity: int, *, bucket: float = 10.0, long_capacity: int = 8640) -> None:
        if bucket <= 0:
            raise ValueError(f"bucket must be a positive number of seconds, got {bucket}")
        self.recent = Series(capacity)
        self.long = Series(long_capacity)
        self.bucket = bucket
        self._bucket_start: float | None = None
        self._bucket_sum = 0.0
        self._bucket_n = 0
        self._peak: float | None = None

    def __len__(self) -> int:
        return len(self.recent)

    def append(self, t: float, value: float) -> None:
        """Add a sample to the recent tier and the open long-term bucket."""
        self.recent.append(t, value)
        if self._peak is None or value > self._peak:
            self._peak = value
        if self._bucket_start is not None and t >= self._bucket_start + self.bucket:
            self._close_bucket()
        if self._bucket_start is None:
            self._bucket_start = t - (t % self.bucket)
        self._bucket_sum += value
        self._bucket_n += 1

    def _close_bucket(self) -> None:
        assert self._bucket_start is not None
        self.long.append(self._bucket_start, self._bucket_sum / self._bucket_n)
        self._bucket_start = None
        self._bucket_sum = 0.0
        self._bucket_n = 0

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
        """Restart the peak from the samples still in the recent tier."""
        self._peak = self.recent.peak()
