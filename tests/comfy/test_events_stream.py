"""EventStream against a scripted local server: drops, backoff, resync, close, auth."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import Awaitable, Callable

import pytest

import pistachio_tui.comfy.stream as stream_module
from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.events import (
    Connected,
    Disconnected,
    Event,
    PreviewImage,
    Progress,
    Resynced,
    Status,
)
from pistachio_tui.comfy.stream import Backoff, EventStream
from pistachio_tui.comfy.tracker import PromptTracker
from pistachio_tui.comfy.types import HistoryEntry
from tests.comfy.fake_comfy import ScriptedComfy
from tests.conftest import load_fixture

FAST = Backoff(initial=0.01, factor=2, cap=0.05, jitter=0)
SID = "5f91ddd5-5a8b-4fad-9eca-0868b3d152f4"


def trace_messages(name: str) -> list[str]:
    return [json.dumps(record["msg"]) for record in load_fixture(f"{name}.ws_trace")]


async def collect_until(stream: EventStream, stop, limit: float = 10.0) -> list:
    """Events until ``stop(event)`` is true; then close the stream and drain it."""
    events = []
    async with asyncio.timeout(limit):
        async for event in stream:
            events.append(event)
            if stop(event):
                await stream.close()
    return events


@pytest.fixture
async def server_factory():
    servers = []

    async def make(*args, **kwargs) -> ScriptedComfy:
        server = ScriptedComfy(*args, **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


async def test_drop_then_resync_reports_the_prompt_that_finished_meanwhile(server_factory):
    history = load_fixture("success.history")
    [(prompt_id, raw_entry)] = history.items()
    entry = HistoryEntry.from_wire(prompt_id, raw_entry)
    messages = trace_messages("success")
    cut = next(i for i, m in enumerate(messages) if '"value": 5,' in m and '"progress"' in m)
    hello = json.dumps({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": SID}})
    server = await server_factory([messages[: cut + 1], [hello]], history_after_drop=history)

    async with ComfyClient(server.url, headers={"X-Proxy-Auth": "token"}) as client:
        stream = EventStream(client, backoff=FAST)
        tracker = PromptTracker()
        tracker.track(prompt_id, entry.prompt, entry.outputs_to_execute)
        events = await collect_until(stream, lambda e: isinstance(e, Resynced))
        for event in events:
            tracker.feed(event)
            if isinstance(event, Disconnected):
                mid = tracker.get(prompt_id)
                assert mid.status == "running" and (mid.value, mid.max) == (5, 20)

    kinds = [type(e) for e in events]
    assert kinds[0] is Connected and events[0].sid == SID
    assert kinds[1] is Status
    drop = kinds.index(Disconnected)
    assert kinds[drop - 1] is Progress and events[drop - 1].value == 5
    assert kinds[drop + 1:drop + 3] == [Connected, Resynced]
    assert events[drop].retry_in == pytest.approx(0.01)
    assert f"lost the websocket to ComfyUI at {server.url}" in events[drop].reason
    resynced = events[drop + 2]
    assert resynced.queue.running == [] and prompt_id in resynced.finished

    state = tracker.get(prompt_id)
    assert state.status == "success" and state.fraction == 1.0
    assert state.outputs == entry.outputs
    assert [o.filename for o in state.outputs] == ["probe_00002_.png"]
    assert state.finished_at == entry.finished_at
    assert server.connections == 2
    assert all(h.get("X-Proxy-Auth") == "token" for h in server.ws_headers)


async def test_first_connect_without_drop_does_not_resync(server_factory):
    preview = struct.pack(">II", 1, 2) + b"\x89PNG"
    server = await server_factory([[trace_messages("cached")[0], preview]])
    async with ComfyClient(server.url) as client:
        stream = EventStream(client, backoff=FAST)
        events = await collect_until(stream, lambda e: isinstance(e, PreviewImage))
    assert [type(e) for e in events] == [Connected, Status, PreviewImage]
    assert events[2] == PreviewImage("png", b"\x89PNG")



async def test_a_server_that_closes_the_socket_is_said_to_have_closed_it(server_factory):
    server = await server_factory([[trace_messages("cached")[0]]], close_last=True)
    async with ComfyClient(server.url) as client:
        stream = EventStream(client, backoff=FAST)
        events = await collect_until(stream, lambda e: isinstance(e, Disconnected))
    assert [type(e) for e in events] == [Connected, Status, Disconnected]
    assert events[-1].reason == "the server closed the connection"


async def test_the_stream_asks_for_no_compression(server_factory):
    # ComfyUI's aiohttp deflates every frame a client allows it to: JPEG previews for nothing, and a
    # flood of small progress frames packs thousands into one read, all parsed in one loop callback.
    server = await server_factory([[trace_messages("cached")[0]]])
    async with ComfyClient(server.url) as client:
        stream = EventStream(client, backoff=FAST)
        await collect_until(stream, lambda e: isinstance(e, Status))
    [headers] = server.ws_headers
    assert "permessage-deflate" not in headers.get("Sec-WebSocket-Extensions", "")

async def test_unreachable_server_backs_off_and_close_ends_the_wait():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with ComfyClient(f"http://127.0.0.1:{port}") as client:
        stream = EventStream(client, backoff=Backoff(initial=0.01, factor=2, cap=0.04, jitter=0))
        seen: list[Disconnected] = []
        async with asyncio.timeout(10):
            async for event in stream:
                assert isinstance(event, Disconnected)
                seen.append(event)
                if len(seen) == 4:
                    break
        assert [d.retry_in for d in seen] == pytest.approx([0.01, 0.02, 0.04, 0.04])
        assert seen[0].reason == (f"Cannot reach ComfyUI at http://127.0.0.1:{port} — is it running and "
                                  "listening on that port? (connection refused)")

        slow = EventStream(client, backoff=Backoff(initial=60, cap=60, jitter=0))
        async with asyncio.timeout(10):
            async for event in slow:
                assert isinstance(event, Disconnected) and event.retry_in == 60
                await slow.close()
        # Reaching this line means close() woke the 60 s backoff wait.


async def test_retry_now_skips_the_rest_of_the_backoff():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with ComfyClient(f"http://127.0.0.1:{port}") as client:
        stream = EventStream(client, backoff=Backoff(initial=60, cap=60, jitter=0))
        attempts = 0
        async with asyncio.timeout(10):
            async for event in stream:
                assert isinstance(event, Disconnected) and event.retry_in == 60
                attempts += 1
                if attempts == 3:
                    await stream.close()
                else:
                    stream.retry_now()
        # Three attempts inside the timeout means retry_now() cut two 60 s waits short.
        assert attempts == 3


async def test_proxy_auth_failure_on_the_websocket(server_factory):
    server = await server_factory([[]], require_header="Authorization")
    async with ComfyClient(server.url) as client:
        stream = EventStream(client, backoff=FAST)
        [event] = await collect_until(stream, lambda e: True)
    assert isinstance(event, Disconnected)
    assert "answered 401: this proxy needs an auth header" in event.reason


def test_backoff_grows_caps_and_jitters():
    backoff = Backoff(initial=0.5, factor=2, cap=10, jitter=0.2)
    for attempt in range(12):
        base = min(10, 0.5 * 2 ** attempt)
        assert base * 0.8 <= backoff.delay(attempt) <= min(10, base * 1.2)
    assert Backoff(jitter=0).delay(100) == 10


STEPS = 2000


async def read_a_backlog_slowly(server_factory, beside: Callable[[], Awaitable[None]], read: list[Event]) -> None:
    """Serve ``STEPS`` progress frames at once and read them into ``read``, 0.2 ms of work per
    event, while ``beside`` runs as another task."""
    frames = [trace_messages("cached")[0]] + [
        json.dumps({"type": "progress", "data": {"value": i, "max": STEPS, "prompt_id": "p", "node": "2"}})
        for i in range(1, STEPS + 1)]
    server = await server_factory([frames])
    async with ComfyClient(server.url) as client:
        stream = EventStream(client, backoff=FAST)
        other = None
        async for event in stream:
            other = other or asyncio.create_task(beside())
            time.sleep(0.0002)  # a consumer doing real work per event
            read.append(event)
            if isinstance(event, Progress) and event.value == STEPS:
                await stream.close()
        other.cancel()


async def test_a_backlog_of_frames_does_not_starve_other_tasks(server_factory):
    """Buffered frames come back from recv() without a suspension; the stream must still share the loop."""
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    await read_a_backlog_slowly(server_factory, other_task, [])
    # 2000 events at 0.2 ms each is 0.4 s of reading: the UI must get a turn every few ms of it.
    assert turns >= 20


async def test_work_another_task_spreads_over_several_loop_turns_is_not_cut_by_a_slice_at_each(server_factory):
    """The UI's work spans several turns of the loop (a key press, its action, the redraw). After a slice
    the stream gives way until the loop is idle: a bare ``sleep(0)`` let one step through per slice."""
    hops = 10
    read: list[Event] = []
    # Events the stream read while each chain ran: one slice's worth at most, not one per hop.
    read_during: list[int] = []

    async def chains() -> None:
        while True:
            await asyncio.sleep(0.02)
            first = len(read)
            for _ in range(hops):
                time.sleep(0.0001)
                await asyncio.sleep(0)
            read_during.append(len(read) - first)

    await read_a_backlog_slowly(server_factory, chains, read)
    # A slice is 5 ms, 25 events at 0.2 ms each; cut at each hop, a chain would see about 250.
    assert len(read_during) >= 5
    assert max(read_during) <= 60, read_during


async def test_giving_way_on_an_idle_loop_takes_one_turn(monkeypatch):
    turns = 0
    real_sleep = asyncio.sleep

    async def counting_sleep(delay: float, *args):
        nonlocal turns
        turns += 1
        return await real_sleep(delay, *args)

    monkeypatch.setattr(stream_module.asyncio, "sleep", counting_sleep)
    results = []
    for _ in range(20):
        turns = 0
        await stream_module._give_way()
        results.append(turns)
    # A turn that takes longer than an idle one (the machine busy elsewhere) costs one more.
    assert sorted(results)[len(results) // 2] == 1, results


async def test_giving_way_lasts_while_another_task_keeps_the_loop_busy(monkeypatch):
    # Out of the way: on a busy machine one preempted turn can outlast the real one.
    monkeypatch.setattr(stream_module, "_GIVE_WAY_S", 10.0)
    hops_done = 0

    async def chain() -> None:
        nonlocal hops_done
        for _ in range(10):
            time.sleep(0.0001)
            hops_done += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(chain())
    await stream_module._give_way()
    assert hops_done == 10
    await task
