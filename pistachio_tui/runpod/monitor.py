"""One refresh of everything a pods view shows, with the idle guard wired in.

A screen (or a headless loop) calls ``await monitor.refresh()`` every few
seconds and renders the returned ``PodsState``; it never talks GraphQL or runs
the idle logic itself. A second reader of the same monitor that needs no
fresher data calls ``await monitor.recent(max_age)`` and costs no request. With ``guard.auto_stop`` on, pods whose countdown ran
out are stopped here (stopped, never terminated) and listed in ``stopped``.

::

    monitor = PodsMonitor(runpod, guard=IdleGuard(idle_minutes=30, auto_stop=False),
                          comfy_http=httpx.AsyncClient())
    state = await monitor.refresh()
    for row in state.rows: ...
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import httpx

from pistachio_tui.failures import unexpected_reason
from pistachio_tui.runpod.api import RunPodClient
from pistachio_tui.runpod.errors import RunPodError
from pistachio_tui.runpod.idle import Action, IdleGuard, StopNow
from pistachio_tui.runpod.models import Account, Pod
from pistachio_tui.runpod.pods import (
    PodSummary,
    comfy_ports,
    comfy_queue_length,
    comfy_url,
    current_pod_id,
    summarize,
)


@dataclass(frozen=True)
class IdleInfo:
    """The idle guard's view of one pod at refresh time, ready to draw."""

    idle_seconds: float
    idle_cost: float
    flagged: bool
    #: Seconds left before the auto-stop, None when no countdown runs.
    countdown: float | None


@dataclass(frozen=True)
class PodsState:
    """The result of one refresh."""

    account: Account
    pods: list[Pod]
    #: Table rows, this pod first (see ``pods.summarize``).
    rows: list[PodSummary]
    this_pod_id: str | None
    #: Pod id → idle info, for running pods the guard has seen idle.
    idle: dict[str, IdleInfo] = field(default_factory=dict)
    #: What the guard decided during this refresh (flags, countdowns, stops, resumptions).
    actions: list[Action] = field(default_factory=list)
    #: Pods this refresh stopped because their auto-stop countdown ran out.
    stopped: list[str] = field(default_factory=list)
    #: Pod id → why an auto-stop failed (it is retried on the next refresh).
    stop_errors: dict[str, str] = field(default_factory=dict)


class PodsMonitor:
    """Polls RunPod, optionally reads each running pod's ComfyUI queue, runs the idle guard."""

    def __init__(self, client: RunPodClient, *, guard: IdleGuard | None = None,
                 comfy_http: httpx.AsyncClient | None = None, this_pod_id: str | None = None,
                 watch: Collection[str] | None = None, busy: Callable[[], Mapping[str, str]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``watch`` limits the guard to these pod ids (None: every pod); ``busy`` says which
        pods run work the app knows of (pod id → what), asked at each refresh."""
        self.client = client
        self.watch = set(watch) if watch is not None else None
        self._busy = busy
        self.guard = guard or IdleGuard(clock=clock)
        self._comfy_http = comfy_http
        self.this_pod_id = this_pod_id if this_pod_id is not None else current_pod_id()
        self._clock = clock
        #: The newest refresh and when it was taken (by ``clock``); None before the first.
        self.latest: PodsState | None = None
        self.latest_at: float | None = None
        # Several readers (the Pods screen, the dashboard) share one monitor: one request at a time.
        self._lock = asyncio.Lock()

    async def _queues(self, pods: list[Pod]) -> dict[str, int | None]:
        if self._comfy_http is None:
            return {}
        running = [p for p in pods if p.is_running and p.runtime is not None]
        lengths = await asyncio.gather(
            *(comfy_queue_length(comfy_url(p, self.this_pod_id, comfy_ports(p)[0]), self._comfy_http)
              for p in running)
        )
        return {p.id: n for p, n in zip(running, lengths)}

    async def refresh(self) -> PodsState:
        """Fetch, feed the guard, act on due stops. Every failure propagates as ``RunPodError``."""
        async with self._lock:
            return await self._guarded_refresh()

    async def recent(self, max_age: float) -> PodsState:
        """The newest refresh if it is at most ``max_age`` seconds old, else a new one.

        For a reader that only needs fresh-enough figures (the dashboard): it
        costs no request while another reader keeps the monitor fresh.
        """
        async with self._lock:
            if self.latest is not None and self.latest_at is not None and self._clock() - self.latest_at <= max_age:
                return self.latest
            return await self._guarded_refresh()

    async def _guarded_refresh(self) -> PodsState:
        # Callers poll on a timer and handle RunPodError; anything else would end their worker
        # without a word and leave the table frozen on old figures.
        try:
            return await self._refresh()
        except RunPodError:
            raise
        except Exception as exc:
            raise RunPodError(f"Refreshing the pods failed: {unexpected_reason(exc)}") from exc

    async def _refresh(self) -> PodsState:
        overview = await self.client.overview()
        now = self._clock()
        guarded = [p for p in overview.pods if self.watch is None or p.id in self.watch]
        busy = self._busy() if self._busy is not None else None
        self.guard.observe_pods(guarded, now, await self._queues(guarded), busy)
        actions = self.guard.tick(now)
        stopped: list[str] = []
        stop_errors: dict[str, str] = {}
        for action in actions:
            if not isinstance(action, StopNow):
                continue
            try:
                await self.client.stop_pod(action.pod_id)
            except RunPodError as exc:
                stop_errors[action.pod_id] = exc.message
                self.guard.stop_failed(action.pod_id)
                continue
            stopped.append(action.pod_id)
        self.latest_at = now
        self.latest = PodsState(
            account=overview.account,
            pods=overview.pods,
            rows=summarize(overview.pods, self.this_pod_id),
            this_pod_id=self.this_pod_id,
            idle=self._idle_info(now),
            actions=actions,
            stopped=stopped,
            stop_errors=stop_errors,
        )
        return self.latest

    def _idle_info(self, now: float) -> dict[str, IdleInfo]:
        info = {}
        for pod_id in self.guard.pod_ids():
            state = self.guard.state(pod_id)
            if state is None or state.idle_since is None:
                continue
            countdown = max(state.stop_at - now, 0.0) if state.stop_at is not None else None
            info[pod_id] = IdleInfo(state.idle_seconds(now), state.idle_cost(now), state.flagged, countdown)
        return info
