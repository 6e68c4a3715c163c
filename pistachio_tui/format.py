"""How Pistachio writes sizes, durations and money, everywhere: screens, CLI output and messages.

One vocabulary, so the same figure reads the same on every screen and in every command.
Unknown values (None) read as ``missing`` ("—" unless the caller says otherwise).
"""

from __future__ import annotations

import math

MISSING = "—"
_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def size(n_bytes: float | None, missing: str = MISSING) -> str:
    """``"512 B"``, ``"1.5 MB"``, ``"6.9 GB"`` (powers of 1024, as file managers and ``ls -h`` count)."""
    if not _known(n_bytes):
        return missing
    assert n_bytes is not None
    n = float(n_bytes)
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def gib(n_bytes: float | None, unit: str = "G", missing: str = MISSING) -> str:
    """Memory in GiB with one decimal (``"23.6G"``): GPU and RAM figures compare at a glance."""
    if not _known(n_bytes):
        return missing
    assert n_bytes is not None
    return f"{n_bytes / 1024 ** 3:.1f}{unit}"


def duration(seconds: float | None, missing: str = MISSING) -> str:
    """``"12s"``, ``"4m 09s"``, ``"2h 05m"``, ``"3d 04h"``: the two largest units, never negative."""
    if not _known(seconds):
        return missing
    assert seconds is not None
    total = max(int(round(seconds)), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def money(dollars: float | None, digits: int = 2, missing: str = MISSING) -> str:
    """``"$1,234.56"``; ``digits=3`` for hourly rates, where a tenth of a cent adds up."""
    if not _known(dollars):
        return missing
    assert dollars is not None
    sign = "-" if dollars < 0 else ""
    return f"{sign}${abs(dollars):,.{digits}f}"


def transfer(done: float, total: float | None = None, speed: float | None = None,
             eta: float | None = None) -> str:
    """A download's progress: ``"12.0 MB / 6.9 GB, 48.0 MB/s, 2m 25s left"`` (unknown parts left out)."""
    parts = [size(done) + (f" / {size(total)}" if total else "")]
    if speed:
        parts.append(f"{size(speed)}/s")
    if _known(eta):
        parts.append(f"{duration(eta)} left")
    return ", ".join(parts)


def percent(value: float | None, missing: str = MISSING) -> str:
    """``"42%"`` from a value already in percent."""
    return missing if not _known(value) else f"{value:.0f}%"
