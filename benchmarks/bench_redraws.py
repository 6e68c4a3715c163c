"""Screen redraws per second of the real app while a server floods progress events (target ≤ 30/s).

A local aiohttp server (its own process) plays a ComfyUI 0.8.0 server: the
app queues the recorded ``success`` prompt through ``POST /prompt``, and the
websocket replays the recorded start of that run, then ``progress`` and
``progress_state`` frames for ever, as fast as the app reads them, until the
app interrupts it. The real ``PistachioApp`` (headless, 120×40) follows it on
the Queue screen and on the dashboard. A redraw is a frame Textual hands to
the terminal (see ``RedrawCounter``), not a message; the yardstick is the
number of progress frames the app took in per second over the same window
(each one could ask for a repaint). The longest stall of the event loop in
the window is how long a key press could wait. After the window the prompt is
interrupted and the screen must end on "Idle": the final state is drawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import multiprocessing
import time
from collections.abc import Awaitable, Callable, Iterator

from benchmarks.bench_events import TRACE, recorded
from benchmarks.common import Figure, bench_main, serve_forever
from benchmarks.headless import RedrawCounter, in_child, pistachio_app, run_headless, wait_for

#: The sampler's step count in the flood: it never gets there.
STEPS = 10**9


def run_start(prompt_id: str) -> list[str]:
    """The recorded run up to its first sampler step, under ``prompt_id``."""
    original, messages, _ = recorded()
    frames = [json.loads(m.replace(original, prompt_id)) for m in messages]
    first_step = next(i for i, f in enumerate(frames) if f["type"] == "progress")
    return [json.dumps(f) for f in frames[:first_step] if f["type"] != "status"]


def endless_steps(prompt_id: str) -> Iterator[str]:
    """Node 2's ``progress`` and ``progress_state`` frames, step after step, for ever."""
    node = {"state": "running", "node_id": "2", "prompt_id": prompt_id, "display_node_id": "2",
            "parent_node_id": None, "real_node_id": "2", "max": STEPS}
    done = {**node, "node_id": "1", "display_node_id": "1", "real_node_id": "1", "value": 1, "max": 1,
            "state": "finished"}
    for step in itertools.count(1):
        yield json.dumps({"type": "progress", "data": {"value": step, "max": STEPS, "prompt_id": prompt_id,
                                                       "node": "2"}})
        yield json.dumps({"type": "progress_state", "data": {"prompt_id": prompt_id,
                                                             "nodes": {"1": done, "2": {**node, "value": step}}}})


def status(remaining: int, sid: str | None = None) -> str:
    data: dict = {"status": {"exec_info": {"queue_remaining": remaining}}}
    if sid:
        data["sid"] = sid
    return json.dumps({"type": "status", "data": data})


def serve(ready: multiprocessing.Queue) -> None:
    """Child process: a server that runs each submitted prompt as an endless flood until interrupted."""
    from aiohttp import web

    stats = json.loads((TRACE / "system_stats.json").read_text())["body"]
    running: list[list] = []
    submitted, interrupted = asyncio.Event(), asyncio.Event()

    async def prompt(request: web.Request) -> web.Response:
        body = await request.json()
        running[:] = [[0, body["prompt_id"], body["prompt"], {"client_id": body["client_id"]}, ["3"]]]
        interrupted.clear()
        submitted.set()
        return web.json_response({"prompt_id": body["prompt_id"], "number": 0, "node_errors": {}})

    async def interrupt(_request: web.Request) -> web.Response:
        interrupted.set()
        return web.json_response({})

    async def flood(sock: web.WebSocketResponse, hangup: asyncio.Task) -> None:
        prompt_id = running[0][1]
        await sock.send_str(status(1))
        for frame in run_start(prompt_id):
            await sock.send_str(frame)
        for n, frame in enumerate(endless_steps(prompt_id)):
            if interrupted.is_set() or hangup.done():
                break
            await sock.send_str(frame)
            if n % 64 == 0:  # let /interrupt and the client's close frame in
                await asyncio.sleep(0)
        running.clear()
        await sock.send_str(json.dumps({"type": "execution_interrupted", "data": {
            "prompt_id": prompt_id, "node_id": "2", "node_type": "SlowSteps", "executed": ["1"]}}))
        await sock.send_str(status(0))

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        # Only a reader sees the client's close frame: the app hangs up when it exits. What the
        # client sends before (its feature flags, as ComfyUI's frontend does) is read and ignored.
        async def until_closed() -> None:
            async for _message in sock:
                pass

        hangup = asyncio.create_task(until_closed())
        with contextlib.suppress(ConnectionError):
            await sock.send_str(status(0, request.query.get("clientId", "flood")))
            while not hangup.done():
                await asyncio.wait([hangup, asyncio.create_task(submitted.wait())],
                                   return_when=asyncio.FIRST_COMPLETED)
                if submitted.is_set() and not hangup.done():
                    submitted.clear()
                    await flood(sock, hangup)
        hangup.cancel()
        return sock

    def answer(body: Callable[[], object]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(_request: web.Request) -> web.Response:
            return web.json_response(body())
        return handler

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ws", ws)
        app.router.add_get("/system_stats", answer(lambda: stats))
        app.router.add_get("/queue", answer(lambda: {"queue_running": running, "queue_pending": []}))
        app.router.add_get("/history", answer(dict))
        app.router.add_get("/history/{prompt_id}", answer(dict))
        app.router.add_post("/prompt", prompt)
        app.router.add_post("/interrupt", interrupt)
        await serve_forever(app, ready.put)

    asyncio.run(main())


async def flood(screen: str, url: str, seconds: float) -> dict:
    """Child side: queue a prompt, watch the flood on ``screen``; redraws/s, updates/s, CPU%, stalls.

    After the window the prompt is interrupted, and the screen must end on
    "Idle": the last state of a flood is always drawn.
    """
    from textual.widgets import Static

    from pistachio_tui.comfy.events import Progress, ProgressState

    app = pistachio_app([url], dashboard=screen == "dashboard")
    title = "#running-title" if screen == "queue" else "#dash-run-title"
    updates = [0]

    def counting(feed):
        # Frames, not the session's updates: a frame that changes nothing is taken in without one.
        def feed_and_count(event):
            if isinstance(event, (Progress, ProgressState)):
                updates[0] += 1
            return feed(event)
        return feed_and_count

    async def measure(app) -> dict:
        if screen != "dashboard":
            await app.switch_mode(screen)
        session = app.manager.active
        await wait_for(lambda: session.state == "connected", 30, "the server to connect")
        _, _, prompt = recorded()
        state = await session.submit(prompt)
        await wait_for(lambda: state.value > 0, 30, "the first progress step")
        session.tracker.feed = counting(session.tracker.feed)
        redraws = RedrawCounter(app)
        stalls = StallMeter()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        wall = time.perf_counter() - wall0
        stall, stall_cpu = stalls.stop()
        result = {"redraws": redraws.count / wall, "updates": updates[0] / wall,
                  "cpu": 100 * (time.process_time() - cpu0) / wall, "stall": stall, "stall_cpu": stall_cpu}
        await session.interrupt()
        shown = app.screen.query_one(title, Static)
        await wait_for(lambda: "Idle" in str(shown.render()), 60, "the screen to show the end of the run")
        return result

    return await run_headless(app, measure)


class StallMeter:
    """The longest time the event loop went without running a 10 ms ticker: how long input would wait.

    ``longest`` is wall time. ``longest_cpu`` counts only the loop thread's own CPU time over the same
    waits: on a machine shared with other work, wall time also counts the moments the system gave
    the core to another process, which no code of the app can shorten.
    """

    def __init__(self) -> None:
        self.longest = 0.0
        self.longest_cpu = 0.0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            start, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.01)
            self.longest = max(self.longest, time.perf_counter() - start - 0.01)
            self.longest_cpu = max(self.longest_cpu, time.thread_time() - cpu - 0.01)

    def stop(self) -> tuple[float, float]:
        """The longest stall in wall time and in the loop's CPU time, in seconds."""
        self._task.cancel()
        return self.longest, self.longest_cpu


def run(args) -> list[Figure]:
    seconds = 4.0 if args.quick else 6.0
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    server = ctx.Process(target=serve, args=(ready,), daemon=True)
    server.start()
    figures = []
    try:
        url = f"http://127.0.0.1:{ready.get(timeout=60)}"
        for screen in ("queue", "dashboard"):
            got = in_child("bench_redraws:flood", screen=screen, url=url, seconds=seconds)
            figures += [
                Figure(f"redraws under a progress flood, {screen}", got["redraws"], "/s",
                       "progress frames taken in", got["updates"],
                       note=f"target ≤ 30/s; {seconds:g} s window; app at {got['cpu']:.0f} % of one core"),
                Figure(f"longest UI stall under the flood, {screen}", got["stall"] * 1000, "ms",
                       "one frame at 30/s", 1000 / 30, note="how long a key press could wait"),
                Figure(f"longest UI stall under the flood, {screen}, loop CPU", got["stall_cpu"] * 1000, "ms",
                       "one frame at 30/s", 1000 / 30, note="the same wait, the app's own CPU time only"),
            ]
    finally:
        server.terminate()
        server.join()
    return figures


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__.splitlines()[0], run))
