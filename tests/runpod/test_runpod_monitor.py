"""PodsMonitor: one refresh = RunPod poll + ComfyUI queues + idle guard + due auto-stops."""

from __future__ import annotations

import httpx
import pytest

from pistachio_tui.runpod.errors import RunPodError
from pistachio_tui.runpod.idle import CountdownStarted, IdleFlagged, IdleGuard, StopNow
from pistachio_tui.runpod.monitor import PodsMonitor
from pistachio_tui.runpod.pods import comfy_queue_length

MIN = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def comfy_queues(lengths: dict[str, int]) -> httpx.AsyncClient:
    """ComfyUI behind RunPod's proxy: GET /prompt answers each pod's queue length; others 502."""
    def handler(request: httpx.Request) -> httpx.Response:
        pod_id = request.url.host.split("-8188.")[0]
        if pod_id not in lengths or request.url.path != "/prompt":
            return httpx.Response(502)
        return httpx.Response(200, json={"exec_info": {"queue_remaining": lengths[pod_id]}})
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def refresh_for(monitor: PodsMonitor, clock: Clock, minutes: int):
    states = []
    for _ in range(minutes):
        states.append(await monitor.refresh())
        clock.now += MIN
    return states


async def test_refresh_gives_rows_account_and_this_pod_first(runpod):
    state = await PodsMonitor(runpod, this_pod_id="def456uvw").refresh()
    assert [r.id for r in state.rows] == ["def456uvw", "abc123xyz", "ghi789rst"]
    assert state.rows[0].is_this_pod and state.this_pod_id == "def456uvw"
    assert state.account.client_balance == 25.0
    assert state.actions == [] and state.stopped == []


async def test_this_pod_from_env(runpod, monkeypatch):
    monkeypatch.setenv("RUNPOD_POD_ID", "abc123xyz")
    assert (await PodsMonitor(runpod).refresh()).rows[0].id == "abc123xyz"


async def test_auto_stop_stops_the_idle_pod_only(runpod, fake_runpod):
    clock = Clock()
    guard = IdleGuard(idle_minutes=5, auto_stop=True, countdown_seconds=2 * MIN, clock=clock)
    monitor = PodsMonitor(runpod, guard=guard, clock=clock)
    states = await refresh_for(monitor, clock, 6)
    assert [type(a) for a in states[5].actions] == [IdleFlagged, CountdownStarted]
    assert states[5].idle["def456uvw"].countdown == 2 * MIN
    assert states[5].idle["def456uvw"].idle_cost == pytest.approx(2.99 * 5 / 60)
    assert "abc123xyz" not in states[5].idle
    states = await refresh_for(monitor, clock, 2)
    assert states[0].idle["def456uvw"].countdown == MIN
    assert [type(a) for a in states[1].actions] == [StopNow]
    assert states[1].stopped == ["def456uvw"]
    assert fake_runpod.pod("def456uvw")["desiredStatus"] == "EXITED"
    assert fake_runpod.pod("abc123xyz")["desiredStatus"] == "RUNNING"
    assert "podTerminate" not in fake_runpod.operations()
    later = await monitor.refresh()
    assert later.stopped == [] and "def456uvw" not in later.idle


async def test_flag_only_when_auto_stop_is_off(runpod, fake_runpod):
    clock = Clock()
    monitor = PodsMonitor(runpod, guard=IdleGuard(idle_minutes=2, clock=clock), clock=clock)
    states = await refresh_for(monitor, clock, 30)
    actions = [a for s in states for a in s.actions]
    assert [type(a) for a in actions] == [IdleFlagged]
    assert states[-1].idle["def456uvw"].flagged and states[-1].idle["def456uvw"].countdown is None
    assert [op for op in fake_runpod.operations() if op != "myself"] == []


async def test_a_queued_comfy_keeps_a_cold_gpu_from_being_flagged(runpod):
    clock = Clock()
    async with comfy_queues({"def456uvw": 3}) as http:
        monitor = PodsMonitor(runpod, guard=IdleGuard(idle_minutes=2, auto_stop=True, clock=clock),
                              comfy_http=http, clock=clock)
        states = await refresh_for(monitor, clock, 10)
    assert all(s.actions == [] and s.idle == {} for s in states)


async def test_a_failed_auto_stop_is_reported_and_retried(runpod, fake_runpod):
    clock = Clock()
    guard = IdleGuard(idle_minutes=1, auto_stop=True, countdown_seconds=0, clock=clock)
    monitor = PodsMonitor(runpod, guard=guard, clock=clock)
    fake_runpod.mutation_errors = ["Something went wrong"]
    states = await refresh_for(monitor, clock, 2)
    assert states[1].stopped == []
    assert "Something went wrong" in states[1].stop_errors["def456uvw"]
    fake_runpod.mutation_errors = None
    state = await monitor.refresh()
    assert state.stopped == ["def456uvw"]


async def test_comfy_queue_length_reads_exec_info(fixture_json):
    body = fixture_json("prompt_get")["body"]
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body))) as c:
        assert await comfy_queue_length("http://x:8188", c) == 0
    async with comfy_queues({}) as c:
        assert await comfy_queue_length("https://p-8188.proxy.runpod.net", c) is None
    bad = httpx.MockTransport(lambda r: httpx.Response(200, json={"exec_info": {"queue_remaining": "2"}}))
    async with httpx.AsyncClient(transport=bad) as c:
        assert await comfy_queue_length("http://x:8188", c) is None


async def test_a_second_reader_shares_the_newest_refresh(runpod, fake_runpod):
    clock = Clock()
    monitor = PodsMonitor(runpod, clock=clock)
    first = await monitor.refresh()
    asked = len(fake_runpod.requests)
    clock.now += 20
    assert await monitor.recent(30) is first, "fresh enough: no request"
    assert len(fake_runpod.requests) == asked
    clock.now += 20
    newer = await monitor.recent(30)
    assert newer is not first and monitor.latest is newer and len(fake_runpod.requests) > asked


async def test_an_unexpected_failure_is_a_runpod_error_the_pods_view_shows(runpod, fake_runpod):
    def busy():
        raise LookupError("batch table changed while read")

    monitor = PodsMonitor(runpod, busy=busy, this_pod_id="")
    with pytest.raises(RunPodError, match="Refreshing the pods failed: LookupError: batch table changed"):
        await monitor.refresh()
    with pytest.raises(RunPodError, match="LookupError"):
        await monitor.recent(60)
