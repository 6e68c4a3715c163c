"""What every benchmark script shares: a figure type and how it is reported.

Each figure is measured together with a yardstick in the same run (a minimal
Textual app, ``json.load``, ``wc -l``, ``curl``...), so the ratio stays
meaningful on a noisy or slower machine where absolute times do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    yardstick: str = ""
    yardstick_value: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.yardstick_value in (None, 0):
            return None
        return self.value / self.yardstick_value

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def median_time(fn: Callable[[], object], runs: int = 5) -> float:
    """Median wall seconds of ``fn`` over ``runs`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


async def cpu_percent_during(work: Callable[[], Awaitable[object]], seconds: float) -> float:
    """Run ``work()`` as a task for ``seconds`` of wall time, cancel it; CPU% of one core the process used.

    CPU is ``time.process_time`` (every thread of the process) over wall time,
    so whatever else runs in the process meanwhile (an app's timers) counts too.
    """
    cpu0, wall0 = time.process_time(), time.perf_counter()
    task = asyncio.create_task(work())
    await asyncio.sleep(seconds)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return 100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)


def peak_rss_mib(children: bool = False) -> float:
    """Peak resident memory of this process (or its waited-for children), MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def format_table(figures: Iterable[Figure]) -> str:
    """One row per figure: value, yardstick, ratio (value / yardstick) and the note (targets, conditions)."""
    rows = [("figure", "value", "yardstick", "ratio", "note")]
    for f in figures:
        yard = f"{f.yardstick_value:.4g} ({f.yardstick})" if f.yardstick_value is not None else f.yardstick
        ratio = f"{f.ratio:.3g}×" if f.ratio is not None else ""
        rows.append((f.name, f"{f.value:.4g} {f.unit}", yard, ratio, f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def bench_main(description: str, run: Callable[[argparse.Namespace], list[Figure]],
               add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
               argv: list[str] | None = None) -> int:
    """The command line of one benchmark script: a table, or ``--json``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a fast look")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    figures = run(args)
    if args.json:
        json.dump([f.as_dict() for f in figures], sys.stdout, indent=2)
        print()
    else:
        print(format_table(figures))
    return 0


async def serve_forever(app, announce) -> None:
    """Serve the aiohttp ``app`` on a free loopback port, tell ``announce(port)``, and never return."""
    import asyncio

    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    announce(runner.addresses[0][1])
    await asyncio.Event().wait()
