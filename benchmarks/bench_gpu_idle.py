"""CPU cost of GPU monitoring at rest: the hub sampling at 1 s, as a percentage of one core.

The hub polls two fake NVML GPUs (in a thread, as with the real driver) and
two ComfyUI servers answering the recorded ``/system_stats`` body, for a
fixed wall time. CPU is ``time.process_time`` (every thread of this process)
over wall time. The yardstick is the same event loop doing nothing but a 1 s
sleep, so the figure is what monitoring adds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks.common import Figure, bench_main, cpu_percent_during

STATS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "comfyui-0.8.0" / "system_stats.json"


async def _idle() -> None:
    while True:
        await asyncio.sleep(1.0)


def monitoring(interval: float = 1.0) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """A hub with two fake GPUs and two recorded-stats servers: (its run loop, its close)."""
    from pistachio_tui.comfy.types import SystemStats
    from pistachio_tui.gpu.hub import GpuHub
    from pistachio_tui.gpu.nvml import NvmlReader
    from tests.gpu.fake_nvml import two_gpus

    body = json.loads(STATS.read_text())["body"]

    async def stats() -> SystemStats:
        # Parse every time: the real client decodes a fresh body on each poll.
        return SystemStats.from_wire(json.loads(json.dumps(body)))

    hub = GpuHub(interval=interval)
    hub.add_local(NvmlReader(two_gpus()))
    hub.add_server("a", stats)
    hub.add_server("b", stats)
    return hub.run, hub.aclose


def run(args) -> list[Figure]:
    seconds = 5.0 if args.quick else 10.0

    async def measure() -> tuple[float, float]:
        baseline = await cpu_percent_during(_idle, seconds)
        loop, close = monitoring()
        busy = await cpu_percent_during(loop, seconds)
        await close()
        return busy, baseline

    busy, baseline = asyncio.run(measure())
    return [Figure("GPU hub at 1 s, 2 GPUs + 2 servers", busy, "% of one core",
                   "idle event loop", baseline, note=f"{seconds:g} s wall each")]


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__.splitlines()[0], run))
