"""Shared pieces of the fault suite: a client that follows a server's events into a
PromptTracker, prompts of a chosen length, and polling without fixed sleeps."""

from __future__ import annotations

import asyncio
import copy
from collections import defaultdict
from typing import Any

import httpx

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.events import Connected, Disconnected, Event, Executing, Resynced
from pistachio_tui.comfy.stream import Backoff, EventStream
from pistachio_tui.comfy.tracker import PromptState, PromptTracker
from pistachio_tui.comfy.types import HistoryEntry
from tests.sim.sim_helpers import recorded_prompt, wait_until

#: Reconnect fast: the faults below last milliseconds, not seconds.
FAST = Backoff(initial=0.01, factor=2.0, cap=0.05, jitter=0.0)
#: Markers of a Python traceback that must never reach a user-facing message.
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "', "\n  ")




def slow_prompt(steps: int, color: int = 0x93C572) -> dict[str, Any]:
    """The recorded EmptyImage → SlowSteps → SaveImage prompt with ``steps`` sampler steps.

    ``color`` changes the cache key, so two prompts with different colours both run.
    """
    prompt, _ = recorded_prompt("success")
    prompt = copy.deepcopy(prompt)
    prompt["2"]["inputs"]["steps"] = steps
    prompt["1"]["inputs"]["color"] = color
    return prompt


def assert_actionable(message: str, *must_contain: str) -> None:
    """A message a person can act on: names what it must, no traceback, one short line."""
    for marker in TRACEBACK_MARKERS:
        assert marker not in message, f"traceback text {marker!r} in {message!r}"
    for part in must_contain:
        assert part in message, f"{part!r} missing from {message!r}"
    assert "\n" not in message.strip() and len(message) < 600, message


class Follower:
    """A ComfyClient, its EventStream and a PromptTracker, as the app wires them.

    Records every tracked prompt's fraction after each event, and the stream
    events that matter for faults (disconnects and resyncs).
    """

    def __init__(self, url: str, *, timeout: float = 5.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.client = ComfyClient(url, timeout=timeout, transport=transport)
        self.stream = EventStream(self.client, backoff=FAST, open_timeout=2.0, ping_interval=None)
        self.tracker = PromptTracker()
        self.fractions: dict[str, list[float]] = defaultdict(list)
        self.disconnects: list[Disconnected] = []
        self.resyncs: list[Resynced] = []
        #: Every prompt whose end went past on the websocket, tracked or not.
        self.ended: set[str] = set()
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Follower:
        self._task = asyncio.create_task(self._follow())
        await wait_until(self.connected.is_set, "the websocket to connect")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        await self.client.aclose()

    async def _follow(self) -> None:
        async for event in self.stream:
            self._see(event)

    def _see(self, event: Event) -> None:
        if isinstance(event, Disconnected):
            self.disconnects.append(event)
        elif isinstance(event, Resynced):
            self.resyncs.append(event)
        elif isinstance(event, Connected):
            self.connected.set()
        elif isinstance(event, Executing) and event.node is None and event.prompt_id:
            self.ended.add(event.prompt_id)
        self.tracker.feed(event)
        for state in self.tracker.states():
            series = self.fractions[state.prompt_id]
            if not series or series[-1] != state.fraction:
                series.append(state.fraction)

    async def submit(self, prompt: dict[str, Any]) -> str:
        """Queue ``prompt`` and start tracking it."""
        return (await self.tracker.submit(self.client, prompt)).prompt_id

    def state(self, prompt_id: str) -> PromptState:
        state = self.tracker.get(prompt_id)
        assert state is not None, f"{prompt_id} is not tracked"
        return state

    async def wait_finished(self, prompt_id: str) -> PromptState:
        await wait_until(lambda: self.state(prompt_id).finished, f"prompt {prompt_id} to finish")
        return self.state(prompt_id)


def assert_matches_history(state: PromptState, entry: HistoryEntry) -> None:
    """The tracker ends exactly where the server's history says the prompt ended."""
    assert state.finished and state.status == entry.outcome
    assert state.outputs == entry.outputs
    if entry.outcome == "success":
        assert state.fraction == 1.0


def never_decreases(series: list[float]) -> bool:
    return all(b >= a for a, b in zip(series, series[1:]))
