"""IdleGuard: flag, countdown, cancel, activity, stale data — on a fake clock."""

from __future__ import annotations

import pytest

from pistachio_tui.runpod.idle import (
    ActivityResumed,
    CountdownStarted,
    IdleFlagged,
    IdleGuard,
    Sample,
    StopNow,
)
from pistachio_tui.runpod.models import Pod
from pistachio_tui.sim.runpod import make_pod

MIN = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def feed(guard: IdleGuard, pod_id: str, start: float, end: float, util: float, queue: int | None = 0,
         every: float = MIN, cost: float = 3.0) -> list:
    """Sample every ``every`` seconds from start to end inclusive, ticking after each; all actions."""
    actions = []
    t = start
    while t <= end:
        guard.observe(pod_id, Sample(t, util, queue), cost_per_hr=cost)
        actions += guard.tick(t)
        t += every
    return actions


def test_flag_after_idle_minutes_with_idle_cost():
    guard = IdleGuard(idle_minutes=30)
    actions = feed(guard, "p1", 0, 29 * MIN, util=1.0)
    assert actions == []
    actions = feed(guard, "p1", 30 * MIN, 40 * MIN, util=1.0)
    assert actions == [IdleFlagged("p1", idle_since=0.0, idle_seconds=30 * MIN, idle_cost=pytest.approx(1.5))]
    assert guard.state("p1").flagged


def test_busy_gpu_or_busy_queue_is_not_idle():
    guard = IdleGuard(idle_minutes=5)
    assert feed(guard, "gpu", 0, 20 * MIN, util=60.0) == []
    assert feed(guard, "queue", 0, 20 * MIN, util=0.0, queue=2) == []
    assert feed(guard, "no-comfy", 0, 5 * MIN, util=0.0, queue=None)[0].pod_id == "no-comfy"


def test_without_auto_stop_nothing_is_ever_stopped():
    guard = IdleGuard(idle_minutes=1, auto_stop=False)
    actions = feed(guard, "p1", 0, 120 * MIN, util=0.0)
    assert [type(a) for a in actions] == [IdleFlagged]


def test_auto_stop_counts_down_then_stops_once():
    guard = IdleGuard(idle_minutes=10, auto_stop=True, countdown_seconds=120)
    actions = feed(guard, "p1", 0, 10 * MIN, util=0.0)
    assert actions == [IdleFlagged("p1", 0.0, 10 * MIN, pytest.approx(0.5)),
                       CountdownStarted("p1", stop_at=12 * MIN)]
    assert guard.state("p1").stop_at == 12 * MIN
    assert feed(guard, "p1", 11 * MIN, 11 * MIN, util=0.0) == []
    actions = feed(guard, "p1", 12 * MIN, 30 * MIN, util=0.0)
    assert actions == [StopNow("p1", idle_seconds=12 * MIN, idle_cost=pytest.approx(0.6))]


def test_zero_countdown_stops_on_the_same_tick():
    guard = IdleGuard(idle_minutes=1, auto_stop=True, countdown_seconds=0)
    actions = feed(guard, "p1", 0, MIN, util=0.0)
    assert [type(a) for a in actions] == [IdleFlagged, CountdownStarted, StopNow]


def test_cancel_stops_the_countdown_until_the_pod_is_busy_again():
    guard = IdleGuard(idle_minutes=10, auto_stop=True, countdown_seconds=120)
    feed(guard, "p1", 0, 10 * MIN, util=0.0)
    assert guard.cancel("p1") is True
    assert guard.cancel("p1") is False
    assert feed(guard, "p1", 11 * MIN, 60 * MIN, util=0.0) == []
    assert guard.state("p1").flagged and guard.state("p1").stop_at is None
    resumed = feed(guard, "p1", 61 * MIN, 61 * MIN, util=80.0)
    assert resumed == [ActivityResumed("p1")]
    actions = feed(guard, "p1", 62 * MIN, 72 * MIN, util=0.0)
    assert [type(a) for a in actions] == [IdleFlagged, CountdownStarted]


def test_activity_during_the_countdown_cancels_it():
    guard = IdleGuard(idle_minutes=10, auto_stop=True, countdown_seconds=300)
    feed(guard, "p1", 0, 10 * MIN, util=0.0)
    assert feed(guard, "p1", 11 * MIN, 11 * MIN, util=0.0, queue=1) == [ActivityResumed("p1")]
    state = guard.state("p1")
    assert state.idle_since is None and not state.flagged and state.stop_at is None
    assert feed(guard, "p1", 12 * MIN, 20 * MIN, util=0.0) == []


def test_short_activity_resets_the_idle_clock():
    guard = IdleGuard(idle_minutes=30)
    feed(guard, "p1", 0, 25 * MIN, util=0.0)
    feed(guard, "p1", 26 * MIN, 26 * MIN, util=50.0)
    assert feed(guard, "p1", 27 * MIN, 56 * MIN, util=0.0) == []
    assert [type(a) for a in feed(guard, "p1", 57 * MIN, 57 * MIN, util=0.0)] == [IdleFlagged]


def test_stale_samples_never_trigger_anything():
    guard = IdleGuard(idle_minutes=10, auto_stop=True, countdown_seconds=0, max_sample_gap=120)
    guard.observe("p1", Sample(0.0, 0.0, 0), cost_per_hr=1.0)
    guard.observe("p1", Sample(5 * MIN, 0.0, 0), cost_per_hr=1.0)
    assert guard.tick(60 * MIN) == []


def test_unknown_utilisation_is_no_evidence():
    guard = IdleGuard(idle_minutes=10)
    feed(guard, "p1", 0, 5 * MIN, util=0.0)
    guard.observe("p1", Sample(6 * MIN, None, None), cost_per_hr=3.0)
    assert guard.state("p1").idle_since == 0.0
    assert [type(a) for a in feed(guard, "p1", 7 * MIN, 10 * MIN, util=0.0)] == [IdleFlagged]


def test_observe_pods_from_the_api_and_forget_stopped_ones():
    clock = Clock()
    guard = IdleGuard(idle_minutes=10, auto_stop=True, countdown_seconds=60, clock=clock)
    pods = [Pod.from_wire(make_pod("busy", "a", gpu_util=90)), Pod.from_wire(make_pod("idle", "b", gpu_util=0)),
            Pod.from_wire(make_pod("off", "c", running=False))]
    actions = []
    for _ in range(12):
        guard.observe_pods(pods, queues={"busy": 0})
        actions += guard.tick()
        clock.now += MIN
    assert {type(a) for a in actions} == {IdleFlagged, CountdownStarted, StopNow}
    assert {a.pod_id for a in actions} == {"idle"}
    assert guard.state("off") is None
    stop = [a for a in actions if isinstance(a, StopNow)][0]
    assert stop.idle_cost == pytest.approx(0.69 * stop.idle_seconds / 3600)
    guard.observe_pods(pods[:1])
    assert guard.state("idle") is None


def test_queue_length_from_comfy_keeps_a_cold_gpu_alive():
    clock = Clock()
    guard = IdleGuard(idle_minutes=1, clock=clock)
    pod = Pod.from_wire(make_pod("p", "a", gpu_util=0))
    for _ in range(5):
        guard.observe_pods([pod], queues={"p": 3})
        assert guard.tick() == []
        clock.now += MIN


def test_the_guard_only_ever_asks_for_a_stop():
    """The guard decides, it does not act: no client in reach, and no action means terminate."""
    import typing

    import pistachio_tui.runpod.idle as idle

    assert not hasattr(idle, "RunPodClient")
    assert set(typing.get_args(idle.Action)) == {IdleFlagged, CountdownStarted, StopNow, ActivityResumed}


def poll(guard: IdleGuard, pods: list[dict], minutes: int, **kwargs) -> list:
    """One RunPod poll a minute for ``minutes`` minutes, with the same pods; all actions."""
    actions = []
    for minute in range(minutes + 1):
        guard.observe_pods([Pod.from_wire(p) for p in pods], 1000.0 + minute * MIN, **kwargs)
        actions += guard.tick(1000.0 + minute * MIN)
    return actions


def test_one_busy_gpu_of_eight_is_not_idle():
    pod = make_pod("p8", "eight", gpu_count=8, gpu_util=0.0)
    pod["runtime"]["gpus"][5]["gpuUtilPercent"] = 30.0  # a mean over eight would read 3.75%
    assert poll(IdleGuard(idle_minutes=5), [pod], 10) == []


def test_a_busy_container_cpu_is_not_idle():
    pod = make_pod("p1", "cpu-bound", gpu_util=0.0)
    pod["runtime"]["container"]["cpuPercent"] = 85
    assert poll(IdleGuard(idle_minutes=5), [pod], 10) == []


def test_a_long_model_download_never_triggers_an_auto_stop():
    pod = make_pod("p1", "downloading", gpu_util=0.0)
    guard = IdleGuard(idle_minutes=5, auto_stop=True, countdown_seconds=0)
    assert poll(guard, [pod], 60, busy={"p1": "downloading flux1-dev.safetensors"}) == []


def test_a_pod_stuck_starting_bills_and_is_flagged():
    pod = make_pod("p1", "pulling")
    pod["runtime"] = None
    actions = poll(IdleGuard(idle_minutes=5), [pod], 6)
    assert [(type(a), a.reason) for a in actions] == [(IdleFlagged, "starting")]
    assert actions[0].idle_cost == pytest.approx(0.69 * 5 / 60)
