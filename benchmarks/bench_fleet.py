"""Fleet dispatch: overhead per job, and the throughput of N simulated servers against one.

Overhead is measured with in-process targets that do no work, so what is left
is the dispatcher's own cost (queueing, journal fsync, manifest); the
yardstick is a plain loop building the same prompts and writing the outputs. Throughput
runs the same batch on 1 and on N simulators whose sampler takes a fixed time
per step; the ideal ratio is N.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, bench_main
from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.fleet.comfy_target import ComfyTarget
from pistachio_tui.fleet.dispatch import BatchRunner
from pistachio_tui.fleet.spec import BatchSpec, expand
from pistachio_tui.fleet.targets import Output
from pistachio_tui.sim.server import SimServer


class NullTarget:
    def __init__(self, name: str) -> None:
        self.name, self.slots = name, 4

    async def check(self, node_types):
        return None

    async def run(self, prompt):
        return [Output("o.png", b"x")]

    async def cancel(self):
        pass

    async def aclose(self):
        pass


def prompt_for(job):
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1,
                                                      "color": job.index % 0xFFFFFF}},
        "2": {"class_type": "SlowSteps", "inputs": {"steps": 10, "delay": 0.0, "image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "b", "images": ["2", 0]}},
    }


async def overhead(n_jobs: int) -> float:
    jobs = expand(BatchSpec(workflow=Path("wf.json"), count=n_jobs))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        await BatchRunner(jobs, [NullTarget("a"), NullTarget("b")], Path(out), prompt_for).run()
        return (time.perf_counter() - start) / n_jobs


async def plain_loop(n_jobs: int) -> float:
    """The yardstick: the same prompts built, run on a no-work target and written out, one after another."""
    jobs = expand(BatchSpec(workflow=Path("wf.json"), count=n_jobs))
    target = NullTarget("plain")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        for job in jobs:
            for n, output in enumerate(await target.run(prompt_for(job))):
                (Path(out) / f"{job.index}-{n}-{output.name}").write_bytes(output.data)
        return (time.perf_counter() - start) / n_jobs


async def throughput(n_servers: int, n_jobs: int, step_delay: float) -> float:
    sims = [SimServer(step_delay=step_delay) for _ in range(n_servers)]
    for sim in sims:
        await sim.start()
    targets = [ComfyTarget(ComfyClient(s.url), name=f"sim{i}", poll_interval=0.02) for i, s in enumerate(sims)]
    jobs = expand(BatchSpec(workflow=Path("wf.json"), count=n_jobs))
    try:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            result = await BatchRunner(jobs, targets, Path(out), prompt_for).run()
            elapsed = time.perf_counter() - start
        assert result.ok, result.failed
        return n_jobs / elapsed
    finally:
        for target in targets:
            await target.aclose()
        for sim in sims:
            await sim.stop()


def run(args) -> list[Figure]:
    n_jobs = 24 if args.quick else 60
    n_overhead = 500 if args.quick else 2000
    per_job = asyncio.run(overhead(n_overhead))
    plain = asyncio.run(plain_loop(n_overhead))
    one = asyncio.run(throughput(1, n_jobs, 0.01))
    many = asyncio.run(throughput(args.servers, n_jobs, 0.01))
    return [
        Figure("dispatch overhead per job, no-work targets", per_job * 1000, "ms",
               "plain loop: build, run, write", plain * 1000, note="ours adds the fsynced journal and manifest"),
        Figure(f"throughput on {args.servers} servers", many, "jobs/s", "one server", one,
               note=f"ideal ratio {args.servers}"),
    ]


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run, lambda p: p.add_argument("--servers", type=int, default=3)))
