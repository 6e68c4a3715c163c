"""A bounded (step, value) series for curves of runs with any number of steps."""

from __future__ import annotations

__all__ = ["DownsampledSeries"]


class DownsampledSeries:
    """Keeps at most ``max_points`` points spread over the whole run.

    When full, every other point is dropped and only every ``stride``-th new
    point is kept from then on (stride doubles each time), so memory is flat
    and the curve still covers step 1 to now evenly.
    """

    def __init__(self, max_points: int = 2000) -> None:
        if max_points < 4:
            raise ValueError("max_points must be at least 4")
        self.max_points = max_points
        self._points: list[tuple[int, float]] = []
        self._stride = 1
        self._seen = 0

    def append(self, step: int, value: float) -> None:
        if self._seen % self._stride == 0:
            self._points.append((step, value))
            if len(self._points) >= self.max_points:
                self._points = self._points[::2]
                self._stride *= 2
        self._seen += 1

    def truncate_after(self, step: int) -> None:
        """Forget points past ``step`` (a resume rewound the run)."""
        self._points = [p for p in self._points if p[0] <= step]

    @property
    def points(self) -> list[tuple[int, float]]:
        return list(self._points)

    @property
    def last_step(self) -> int | None:
        return self._points[-1][0] if self._points else None

    def __len__(self) -> int:
        return len(self._points)
