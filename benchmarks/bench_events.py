"""Websocket events decoded into tracker state per second, against a raw recv + json.loads loop.

A local aiohttp server (its own process, so it does not share our CPU time
slice) replays the recorded ComfyUI 0.8.0 ``success`` trace over and over,
each copy with a new prompt id, at full speed. Pistachio's side is the real
path: ``EventStream`` (websocket, ``parse_message`` into typed events) feeding
a ``PromptTracker`` that follows every prompt. The yardstick reads the same
frames with a bare ``websockets`` client (uncompressed, as ``EventStream``
asks for) and ``json.loads`` each one.

Rates are frames per second of the client's CPU time: the machine this runs on
is shared, and wall time there measures the scheduler as much as the code (the
server's own pace, or another process taking the core, would count against
whichever loop it happened to). The runs alternate; the medians are compared,
and the note gives the same ratio in wall time.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Figure, bench_main, serve_forever

TRACE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "comfyui-0.8.0"
RUNS = 9


@dataclass
class Rate:
    """Frames per second of wall time and per second of this process's CPU time."""

    wall: float
    cpu: float


class Clocks:
    """Wall and CPU time since it was started."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rate(self, frames: int) -> Rate:
        return Rate(frames / (time.perf_counter() - self.wall), frames / (time.process_time() - self.cpu))


def recorded() -> tuple[str, list[str], dict]:
    """The recorded prompt id, the trace's messages as sent, and the prompt itself."""
    messages = [json.dumps(r["msg"]) for r in json.loads((TRACE / "success.ws_trace.json").read_text())]
    [(prompt_id, entry)] = json.loads((TRACE / "success.history.json").read_text()).items()
    return prompt_id, messages, entry["prompt"][2]


def prompt_ids(copies: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_OID, f"bench-events-{n}")) for n in range(copies)]


def long_trace(copies: int) -> list[str]:
    """The trace ``copies`` times, each copy with its own prompt id."""
    original, messages, _ = recorded()
    return [m.replace(original, pid) for pid in prompt_ids(copies) for m in messages]


def serve(copies: int, ready: multiprocessing.Queue) -> None:
    """Child process: serve ``/ws`` replaying the long trace to every connection."""
    from aiohttp import web

    frames = long_trace(copies)

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        for frame in frames:
            await sock.send_str(frame)
        await sock.close()
        return sock

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ws", ws)
        await serve_forever(app, ready.put)

    asyncio.run(main())


async def raw_loop(url: str, expected: int) -> Rate:
    """Frames per second through a bare websockets client and json.loads."""
    from websockets.asyncio.client import connect

    count = 0
    # Uncompressed, as EventStream asks: the figure compares what is done with each frame, not the wire.
    async with connect(url + "/ws?clientId=raw", max_size=None, ping_interval=None, compression=None) as ws:
        clocks = Clocks()
        async for frame in ws:
            json.loads(frame)
            count += 1
    rate = clocks.rate(count)
    assert count == expected, (count, expected)
    return rate


async def tracked_loop(url: str, copies: int, expected: int) -> Rate:
    """Frames per second through EventStream into a PromptTracker following every prompt."""
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.events import Connected
    from pistachio_tui.comfy.stream import EventStream
    from pistachio_tui.comfy.tracker import PromptTracker

    _, _, prompt = recorded()
    # Room for every prompt, so the check below can see each one's final state.
    tracker = PromptTracker(max_finished=copies)
    ids = prompt_ids(copies)
    for pid in ids:
        tracker.track(pid, prompt)
    count = 0
    clocks = Clocks()
    async with ComfyClient(url) as client:
        stream = EventStream(client, ping_interval=None)
        async for event in stream:
            if isinstance(event, Connected):
                clocks = Clocks()
                continue
            tracker.feed(event)
            count += 1
            if count == expected:
                await stream.close()
                break
        rate = clocks.rate(count)
    done = len([pid for pid in ids if (state := tracker.get(pid)) is not None and state.status == "success"])
    assert done == copies, f"only {done} of {copies} prompts ended in success"
    return rate


def run(args) -> list[Figure]:
    copies = 200 if args.quick else 2000
    expected = len(long_trace(1)) * copies
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    server = ctx.Process(target=serve, args=(copies, ready), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{ready.get(timeout=60)}"
        raw, tracked = [], []
        for _ in range(RUNS):
            raw.append(asyncio.run(raw_loop(url.replace("http", "ws"), expected)))
            tracked.append(asyncio.run(tracked_loop(url, copies, expected)))
    finally:
        server.terminate()
        server.join()
    cpu_raw, cpu_tracked = (statistics.median(r.cpu for r in rates) for rates in (raw, tracked))
    wall_ratio = statistics.median(r.wall for r in tracked) / statistics.median(r.wall for r in raw)
    return [Figure("ws events → tracker state", cpu_tracked, "msg/CPU-s", "websockets recv + json.loads", cpu_raw,
                   note=f"{expected} frames ({copies} prompts), median of {RUNS}; in wall time {wall_ratio:.2f}×")]


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run))
