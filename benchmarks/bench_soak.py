"""Memory over a soak of 10,000 prompts: does following a server for days stay bounded?

The simulated ComfyUI runs in its own process (``python -m pistachio_tui.sim``,
no step delay), so this process holds only the client side as the app wires
it: a ``ComfyClient`` submitting prompts (up to ``WINDOW`` in flight), an
``EventStream`` and a ``PromptTracker`` following every one to its end.
Resident memory is read at 1,000 prompts and at the end, against the same
process before the soak. The server's own memory is reported too: its
history is bounded like ComfyUI's (10,000 entries), so it grows until then.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import time
import uuid
from pathlib import Path

from benchmarks.common import Figure, bench_main
from benchmarks.headless import start_sim

TRACE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "comfyui-0.8.0"
WINDOW = 16
WARM_UP = 100
CHECKPOINT = 1000
#: Seconds beyond 0.1 s per prompt before a stuck soak gives up instead of hanging.
STALL_LIMIT = 60


def _recorded_prompt_text() -> str:
    [(_, entry)] = json.loads((TRACE / "success.history.json").read_text()).items()
    return json.dumps(entry["prompt"][2])


_PROMPT_TEXT = _recorded_prompt_text()


def rss_mib(pid: int | str = "self") -> float:
    """Current (not peak) resident memory of a process, MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024


def small_prompt(n: int) -> dict:
    """The recorded EmptyImage → SlowSteps → SaveImage prompt, tiny, 3 steps, unique per ``n``."""
    prompt = json.loads(_PROMPT_TEXT)
    prompt["1"]["inputs"].update(width=8, height=8, color=n % 0xFFFFFF)
    prompt["2"]["inputs"]["steps"] = 3
    return prompt


class Soak:
    """One client following a server through ``submit`` after ``submit``; counts finished prompts."""

    def __init__(self, url: str, server_pid: int) -> None:
        from pistachio_tui.comfy.client import ComfyClient
        from pistachio_tui.comfy.stream import EventStream
        from pistachio_tui.comfy.tracker import PromptTracker

        self.client = ComfyClient(url, timeout=30)
        self.stream = EventStream(self.client)
        self.tracker = PromptTracker()
        self.server_pid = server_pid
        self.connected = asyncio.Event()
        self.finished = asyncio.Condition()
        self.done = 0
        self.marks: dict[str, float] = {}

    async def follow(self) -> None:
        from pistachio_tui.comfy.events import Connected

        async for event in self.stream:
            if isinstance(event, Connected):
                self.connected.set()
            state = self.tracker.feed(event)
            if state is not None and state.finished:
                async with self.finished:
                    self.done += 1
                    self.finished.notify_all()

    async def submit_range(self, start: int, stop: int) -> None:
        """Queue prompts ``start..stop`` (at most ``WINDOW`` unfinished) and wait for them all."""
        for n in range(start, stop):
            async with self.finished:
                await self.finished.wait_for(lambda: n - self.done < WINDOW)
            prompt = small_prompt(n)
            # Tracked before it is queued: with no step delay the whole run can arrive on the
            # websocket before the POST answer, and the tracker ignores prompts it does not know.
            prompt_id = str(uuid.uuid4())
            self.tracker.track(prompt_id, prompt)
            await self.client.post_json("/prompt", {"prompt": prompt, "client_id": self.client.client_id,
                                                    "prompt_id": prompt_id})
        async with self.finished:
            await self.finished.wait_for(lambda: self.done >= stop)

    def mark(self, name: str) -> None:
        gc.collect()
        self.marks[name] = rss_mib()
        self.marks[f"server {name}"] = rss_mib(self.server_pid)

    async def run(self, total: int) -> dict[str, float]:
        follower = asyncio.create_task(self.follow())
        try:
            async with asyncio.timeout(STALL_LIMIT + total / 10):
                await self.connected.wait()
                await self.submit_range(0, WARM_UP)
                self.mark("before")
                started = time.perf_counter()
                await self.submit_range(WARM_UP, WARM_UP + CHECKPOINT)
                self.mark("1k")
                await self.submit_range(WARM_UP + CHECKPOINT, WARM_UP + total)
                self.marks["seconds"] = time.perf_counter() - started
                self.mark("end")
            self.marks["tracked"] = len(self.tracker.states())
        finally:
            await self.stream.close()
            await follower
            await self.client.aclose()
        return self.marks


def run(args) -> list[Figure]:
    total = 1000 if args.quick else 10_000
    proc, url = start_sim(step_delay=0)
    try:
        m = asyncio.run(Soak(url, proc.pid).run(total))
    finally:
        proc.terminate()
        proc.wait()
    figures = [
        Figure(f"client RSS after {total // 1000}k prompts", m["end"], "MiB", "RSS before the soak", m["before"],
               note=f"tracker holds {m['tracked']:.0f} prompts; {total / m['seconds']:.0f} prompts/s"),
        Figure(f"sim server RSS after {total // 1000}k prompts", m["server end"], "MiB",
               "server RSS before the soak", m["server before"], note="history bounded at 10,000 like ComfyUI"),
    ]
    if total > CHECKPOINT:
        per_k = (m["end"] - m["1k"]) * 1024 / ((total - CHECKPOINT) / 1000)
        first_k = (m["1k"] - m["before"]) * 1024
        figures[:0] = [
            Figure("client RSS after 1k prompts", m["1k"], "MiB", "RSS before the soak", m["before"]),
            Figure("client RSS growth per 1k prompts after 1k", per_k, "KiB", "growth over the first 1k", first_k,
                   note="about 0 when bounded (the tracker fills up in the first 1k)"),
        ]
    return figures


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run))
