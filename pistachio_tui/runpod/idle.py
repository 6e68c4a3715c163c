"""Idle guard: notice pods that cost money while doing nothing.

Pure logic, no I/O: the caller feeds samples (time, GPU utilisation, container
CPU, ComfyUI queue length, other work it knows of) and calls ``tick(now)``; the
guard answers with actions. A pod is idle while its busiest GPU and its
container's CPU stay under their thresholds, its queue is empty and nothing
else (a model download, a training run) is known to run on it. A pod stuck
starting (RUNNING, no container yet) bills too and is counted as idle. After
``idle_minutes`` of that it is flagged, with the money spent while idle. With
``auto_stop`` on, a flag starts a countdown the user can cancel; when it runs
out the guard asks for a *stop* (the volume survives). It never asks for a
terminate.

Decisions are made only on fresh data: if the samples of a pod stop coming
(the poller failed, the pod vanished), nothing is flagged or stopped on the
strength of old numbers.

::

    guard = IdleGuard(idle_minutes=30, auto_stop=True)
    guard.observe_pods(overview.pods, now, queues={pod_id: queue_len})
    for action in guard.tick(now):
        if isinstance(action, StopNow):
            await runpod.stop_pod(action.pod_id)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pistachio_tui.runpod.models import Pod


@dataclass(frozen=True)
class Sample:
    """One observation of a pod. ``None`` means "not known" and is no evidence either way."""

    time: float
    gpu_util_percent: float | None
    queue_length: int | None = None
    cpu_percent: float | None = None
    #: Work the app knows runs on the pod ("downloading flux.safetensors", "training"): never idle.
    busy_with: str | None = None
    #: The pod bills but its container is not up yet (image pull, first boot, crash loop).
    starting: bool = False


@dataclass(frozen=True)
class IdleFlagged:
    """The pod has been idle ``idle_seconds``, costing ``idle_cost`` dollars meanwhile."""

    pod_id: str
    idle_since: float
    idle_seconds: float
    idle_cost: float
    #: "idle", or "starting" for a pod whose container never came up.
    reason: str = "idle"


@dataclass(frozen=True)
class CountdownStarted:
    """Auto-stop will stop the pod at ``stop_at`` unless ``cancel(pod_id)`` is called."""

    pod_id: str
    stop_at: float


@dataclass(frozen=True)
class StopNow:
    """Stop the pod now (never terminate it)."""

    pod_id: str
    idle_seconds: float
    idle_cost: float


@dataclass(frozen=True)
class ActivityResumed:
    """A flagged pod got busy again; its flag and any countdown are gone."""

    pod_id: str


Action = IdleFlagged | CountdownStarted | StopNow | ActivityResumed


@dataclass
class IdleState:
    """What the guard knows about one pod; read it to draw badges and countdowns."""

    cost_per_hr: float = 0.0
    last_sample: float | None = None
    idle_since: float | None = None
    reason: str = "idle"
    flagged: bool = False
    stop_at: float | None = None
    #: The user cancelled the countdown of this idle spell; no new one until activity.
    cancelled: bool = False
    stop_requested: bool = False

    def idle_seconds(self, now: float) -> float:
        return 0.0 if self.idle_since is None else max(now - self.idle_since, 0.0)

    def idle_cost(self, now: float) -> float:
        return self.cost_per_hr * self.idle_seconds(now) / 3600.0


class IdleGuard:
    """Tracks idle spells per pod and decides when to flag and (opt-in) stop."""

    def __init__(self, *, idle_minutes: float = 30.0, util_threshold: float = 5.0, cpu_threshold: float = 20.0,
                 auto_stop: bool = False, countdown_seconds: float = 60.0,
                 max_sample_gap: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_seconds = idle_minutes * 60.0
        self.util_threshold = util_threshold
        self.cpu_threshold = cpu_threshold
        self.auto_stop = auto_stop
        self.countdown_seconds = countdown_seconds
        self.max_sample_gap = max_sample_gap
        self._clock = clock
        self._pods: dict[str, IdleState] = {}
        self._pending: list[Action] = []

    def state(self, pod_id: str) -> IdleState | None:
        """The guard's view of a pod, None when it has never been observed."""
        return self._pods.get(pod_id)

    def pod_ids(self) -> list[str]:
        """The pods the guard currently tracks."""
        return list(self._pods)

    def stop_failed(self, pod_id: str) -> None:
        """The stop asked for could not be done; ask again on the next tick."""
        state = self._pods.get(pod_id)
        if state is not None:
            state.stop_requested = False

    def _is_idle(self, sample: Sample) -> bool | None:
        if sample.busy_with or (sample.queue_length is not None and sample.queue_length > 0):
            return False
        if sample.cpu_percent is not None and sample.cpu_percent >= self.cpu_threshold:
            return False
        if sample.starting:
            return True
        if sample.gpu_util_percent is None:
            return None
        return sample.gpu_util_percent < self.util_threshold

    def observe(self, pod_id: str, sample: Sample, cost_per_hr: float = 0.0) -> None:
        """Record one sample; activity ends the idle spell (and cancels a countdown)."""
        state = self._pods.setdefault(pod_id, IdleState())
        state.cost_per_hr = cost_per_hr
        idle = self._is_idle(sample)
        if idle is None:
            return
        state.last_sample = sample.time
        if idle:
            if state.idle_since is None:
                state.idle_since = sample.time
            state.reason = "starting" if sample.starting else "idle"
            return
        if state.flagged:
            self._pending.append(ActivityResumed(pod_id))
        self._pods[pod_id] = IdleState(cost_per_hr=cost_per_hr, last_sample=sample.time)

    def observe_pods(self, pods: Iterable[Pod], now: float | None = None,
                     queues: Mapping[str, int | None] | None = None,
                     busy: Mapping[str, str] | None = None) -> None:
        """Feed one RunPod poll: running pods are sampled, the others forgotten.

        ``queues`` maps pod id to its ComfyUI queue length (running + pending)
        where the caller knows it; ``busy`` maps pod id to other work known to
        run there (a download, a training run).
        """
        now = self._clock() if now is None else now
        queues, busy = queues or {}, busy or {}
        seen = set()
        for pod in pods:
            if not pod.is_running:
                continue
            seen.add(pod.id)
            runtime = pod.runtime
            sample = Sample(now, runtime.gpu_util_percent if runtime is not None else None, queues.get(pod.id),
                            cpu_percent=runtime.container.cpu_percent if runtime and runtime.container else None,
                            busy_with=busy.get(pod.id), starting=runtime is None)
            self.observe(pod.id, sample, pod.billing_per_hr)
        for pod_id in set(self._pods) - seen:
            self.forget(pod_id)

    def forget(self, pod_id: str) -> None:
        """Drop a pod (stopped, terminated, gone); a pending countdown dies with it."""
        self._pods.pop(pod_id, None)

    def cancel(self, pod_id: str) -> bool:
        """Cancel the auto-stop countdown of a pod; True when there was one."""
        state = self._pods.get(pod_id)
        if state is None or state.stop_at is None:
            return False
        state.stop_at = None
        state.cancelled = True
        return True

    def tick(self, now: float | None = None) -> list[Action]:
        """Actions due at ``now``: flags, countdown starts, stops, activity resumptions."""
        now = self._clock() if now is None else now
        actions, self._pending = self._pending, []
        for pod_id, state in self._pods.items():
            if state.idle_since is None or state.stop_requested or state.last_sample is None:
                continue
            if now - state.last_sample > self.max_sample_gap:
                continue
            idle_for = state.idle_seconds(now)
            if idle_for < self.idle_seconds:
                continue
            if not state.flagged:
                state.flagged = True
                actions.append(IdleFlagged(pod_id, state.idle_since, idle_for, state.idle_cost(now), state.reason))
            if not self.auto_stop or state.cancelled:
                continue
            if state.stop_at is None:
                state.stop_at = now + self.countdown_seconds
                actions.append(CountdownStarted(pod_id, state.stop_at))
            if now >= state.stop_at:
                state.stop_requested = True
                actions.append(StopNow(pod_id, idle_for, state.idle_cost(now)))
        return actions
