"""Fold websocket events into the state of each tracked prompt.

Overall progress of a prompt is

    (weight of the nodes done + fraction of the current node's weight) / weight of the nodes to execute

where the nodes to execute are those the outputs depend on (all nodes when the
outputs are unknown) minus the cached ones, and a node weighs its sampler
steps (1 when it has none): a 30-step sampler is most of a prompt's time. It
never goes down, even when the server reports things in an unexpected order.

it/s is measured over at least ``RATE_WINDOW_S`` of progress, never from two
frames that happened to arrive together (a stalled UI, a buffering proxy, or a
fast node's two quick ticks would otherwise show thousands of it/s); the ETA is
every sampler step still to run, at that rate.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from pistachio_tui.comfy.events import (
    Event,
    Executed,
    Executing,
    ExecutionCached,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    PreviewImage,
    Progress,
    ProgressState,
    Resynced,
)
from pistachio_tui.comfy.types import HistoryEntry, OutputFile, QueueItem

if TYPE_CHECKING:
    from pistachio_tui.comfy.client import ComfyClient

#: ``exception_type`` of the error given to a prompt the server forgot.
LOST = "PromptLost"

#: Statuses after which no event changes a prompt any more.
FINAL = frozenset({"success", "error", "interrupted"})
#: The shortest span of progress a step rate is measured over (seconds).
RATE_WINDOW_S = 1.0
#: Samples are kept at least this far apart (the newest always): a flood of thousands of steps a
#: second would otherwise leave thousands of samples to walk through for each step.
_SAMPLE_SPACING_S = RATE_WINDOW_S / 20


@dataclass
class PromptState:
    """What is known about one prompt; ``fraction`` is 0..1 and never decreases."""

    prompt_id: str
    #: "queued", "running", "success", "error" or "interrupted".
    status: str = "queued"
    current_node: str | None = None
    current_title: str | None = None
    #: Steps of the current node (a sampler's steps); 0/0 when it reports none.
    value: int = 0
    max: int = 0
    fraction: float = 0.0
    it_per_s: float | None = None
    eta_s: float | None = None
    cached_nodes: list[str] = field(default_factory=list)
    done_nodes: list[str] = field(default_factory=list)
    outputs: list[OutputFile] = field(default_factory=list)
    error: ExecutionError | None = None
    interrupted: ExecutionInterrupted | None = None
    #: Epoch seconds from the server's timestamps.
    started_at: float | None = None
    finished_at: float | None = None
    #: Queued by this client. ComfyUI sends node progress only to the client that
    #: queued a prompt, so others' prompts (e.g. from a browser) show none.
    ours: bool = False
    #: The newest live preview of this prompt, when the server sends them.
    preview: PreviewImage | None = None

    @property
    def finished(self) -> bool:
        """True once the prompt succeeded, failed or was interrupted."""
        return self.status in FINAL

    @property
    def lost(self) -> bool:
        """True when the server forgot the prompt (restart) before it ended."""
        return self.error is not None and self.error.exception_type == LOST

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, once both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def _links(inputs: dict[str, Any]) -> list[str]:
    # A linked input is ``[source_node_id, output_index]``.
    return [str(v[0]) for v in inputs.values()
            if isinstance(v, list) and len(v) == 2 and isinstance(v[0], (str, int)) and isinstance(v[1], int)]


def sampler_steps(inputs: dict[str, Any]) -> int:
    """Steps a node will report, from its ``steps`` input (0 when it has none).

    KSamplerAdvanced-style nodes run only ``start_at_step``..``end_at_step`` of them.
    """
    steps = inputs.get("steps")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
        return 0
    start, end = inputs.get("start_at_step"), inputs.get("end_at_step")
    if isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool):
        return max(0, min(steps, end) - max(0, start))
    return steps


def nodes_to_execute(prompt: dict[str, Any], outputs: list[str] | None) -> set[str]:
    """Nodes the given output nodes depend on (themselves included); all nodes without outputs."""
    if not outputs:
        return set(prompt)
    seen: set[str] = set()
    todo = [o for o in outputs if o in prompt]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(n for n in _links(prompt[node].get("inputs") or {}) if n in prompt and n not in seen)
    return seen


class _Totals(NamedTuple):
    #: Weight of the nodes to execute (not cached), and of those done.
    weight: int
    done_weight: int
    #: Nodes to execute not done yet, and their sampler steps.
    remaining: frozenset[str]
    remaining_steps: int


class _Tracked:
    """Book-keeping behind one ``PromptState``."""

    def __init__(self, state: PromptState, prompt: dict[str, Any], outputs: list[str] | None) -> None:
        self.state = state
        self.prompt = prompt
        self.needed = nodes_to_execute(prompt, outputs)
        self.cached: set[str] = set()
        self.done: set[str] = set()
        #: Sums over ``needed``, ``cached`` and ``done``, until one of them changes.
        self._totals: _Totals | None = None
        #: Sampler steps of each node (0 for nodes without steps).
        self.steps = {node: sampler_steps(entry.get("inputs") or {}) if isinstance(entry, dict) else 0
                      for node, entry in prompt.items()}
        #: What each node weighs in the overall progress: its sampler steps, 1 without any.
        self.weights = {node: max(1, steps) for node, steps in self.steps.items()}
        #: The node the rate samples belong to, and its (clock time, step) samples, oldest first.
        self.rate_node: str | None = None
        self.samples: deque[tuple[float, int]] = deque()
        #: The newest step seen of ``rate_node``.
        self.last_step = 0
        #: False while the POST that queues it is in flight: the server may not list it yet.
        self.confirmed = True

    def title(self, node: str) -> str:
        entry = self.prompt.get(node) or {}
        return str((entry.get("_meta") or {}).get("title") or entry.get("class_type") or f"node {node}")

    def mark_done(self, node: str) -> None:
        if node not in self.done:
            self.done.add(node)
            self.state.done_nodes.append(node)
            self._totals = None

    def set_cached(self, nodes: set[str]) -> None:
        self.cached = nodes
        self._totals = None

    def totals(self) -> _Totals:
        # Every progress frame needs these; the sets they come from change a few times a prompt.
        if self._totals is None:
            weights = self.weights
            todo = self.needed - self.cached
            remaining = frozenset(todo - self.done)
            self._totals = _Totals(sum(weights[n] for n in todo), sum(weights[n] for n in todo & self.done),
                                   remaining, sum(self.steps[n] for n in remaining))
        return self._totals

    def update_fraction(self) -> None:
        state = self.state
        # Read straight when cached (a _Totals, a 4-tuple, is never falsy): this runs for every step.
        totals = self._totals or self.totals()
        if not totals.weight:
            value = 1.0 if state.status != "queued" else 0.0
        else:
            value = totals.done_weight
            node = state.current_node
            if state.max > 0 and node in totals.remaining:
                value += min(1.0, state.value / state.max) * self.weights[node]
            value /= totals.weight
        if value > state.fraction:
            state.fraction = min(1.0, value)

    def steps_left(self) -> int:
        """Sampler steps still to run: the rest of the current node's, then every later sampler's."""
        state = self.state
        current = state.current_node
        left = max(0, state.max - state.value) if current is not None and current not in self.done else 0
        totals = self._totals or self.totals()
        later = totals.remaining_steps - (self.steps.get(current, 0) if current in totals.remaining else 0)
        return left + later

    def sample(self, node: str, value: int, now: float) -> float | None:
        """Record step ``value`` of ``node`` at ``now``; the rate over the newest window, if one spans it."""
        if node != self.rate_node or value < self.last_step:
            # Another node, or the same one starting over: its steps need not take as long.
            self.rate_node = node
            self.samples.clear()
        if not self.samples or value > self.last_step:
            if len(self.samples) >= 2 and now - self.samples[-2][0] < _SAMPLE_SPACING_S:
                # Too close to the one before: the newest replaces it, so the base is always a step seen.
                self.samples[-1] = (now, value)
            else:
                self.samples.append((now, value))
        self.last_step = value
        # The base is the newest sample at least a window old: time only goes on, so the ones
        # before it will never be the base again.
        samples = self.samples
        while len(samples) >= 2 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()
        base_time, base_step = samples[0]
        if now - base_time < RATE_WINDOW_S or value <= base_step:
            return None
        return (value - base_step) / (now - base_time)


class PromptTracker:
    """Per-prompt state from websocket events; only tracked prompts are followed.

    ``clock`` (monotonic seconds) times progress steps for it/s and ETA; tests
    replaying a recorded trace pass the trace's own times. At most
    ``max_finished`` finished prompts are kept (oldest dropped first).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_finished: int = 200) -> None:
        self._clock = clock
        self._max_finished = max_finished
        self._prompts: OrderedDict[str, _Tracked] = OrderedDict()
        #: What each kind of event does to its prompt's state, and whether it changed anything.
        #: Looked up by type, not asked of each in turn: a flood brings several events a step.
        self._handlers: dict[type, Callable[[_Tracked, Any], bool]] = {
            Progress: self._on_progress, ProgressState: self._on_progress_state, Executing: self._on_executing,
            ExecutionStart: self._on_start, ExecutionCached: self._on_cached, Executed: self._on_executed,
            ExecutionSuccess: self._on_success, ExecutionError: self._on_error,
            ExecutionInterrupted: self._on_interrupted, PreviewImage: self._on_preview,
        }

    def track(self, prompt_id: str, prompt: dict[str, Any], outputs_to_execute: list[str] | None = None
              ) -> PromptState:
        """Start following a prompt (API format) queued as ``prompt_id``."""
        existing = self._prompts.get(prompt_id)
        if existing is not None:
            if not existing.prompt and prompt:
                # First seen without its prompt (e.g. a preview frame): now its nodes are known.
                self._prompts[prompt_id] = _Tracked(existing.state, prompt, outputs_to_execute)
            return existing.state
        tracked = _Tracked(PromptState(prompt_id), prompt, outputs_to_execute)
        self._prompts[prompt_id] = tracked
        self._trim()
        return tracked.state

    async def submit(self, client: ComfyClient, prompt: dict[str, Any],
                     extra_data: dict[str, Any] | None = None, front: bool = False,
                     outputs_to_execute: list[str] | None = None) -> PromptState:
        """Queue ``prompt`` on ``client`` under an id chosen here, tracked before it is sent.

        A short prompt can start and end before the server's answer to the POST is
        read; tracking first means none of its events are missed. A rejected or
        failed submit stops the tracking and re-raises.
        """
        prompt_id = str(uuid.uuid4())
        self.track(prompt_id, prompt, outputs_to_execute)
        tracked = self._prompts[prompt_id]
        tracked.confirmed = False
        tracked.state.ours = True
        try:
            await client.submit(prompt, extra_data, front=front, prompt_id=prompt_id)
        except BaseException:
            self._prompts.pop(prompt_id, None)
            raise
        tracked.confirmed = True
        return tracked.state

    def track_item(self, item: QueueItem) -> PromptState:
        """Follow a prompt found in the server's queue."""
        return self.track(item.prompt_id, item.prompt, item.outputs_to_execute)

    def mark_running(self, prompt_id: str) -> PromptState | None:
        """The server lists the prompt as running (the only sign of another client's prompt)."""
        tracked = self._prompts.get(prompt_id)
        if tracked is None or tracked.state.status != "queued":
            return None
        tracked.state.status = "running"
        return tracked.state

    def forget(self, prompt_id: str) -> None:
        """Stop following a prompt (e.g. another client's, deleted before it ran)."""
        self._prompts.pop(prompt_id, None)

    def get(self, prompt_id: str) -> PromptState | None:
        """The state of a tracked prompt."""
        tracked = self._prompts.get(prompt_id)
        return tracked.state if tracked else None

    def states(self) -> list[PromptState]:
        """Every tracked prompt, oldest first."""
        return [t.state for t in self._prompts.values()]

    def feed(self, event: Event) -> PromptState | None:
        """Apply one event; returns the state it changed, if any."""
        handler = self._handlers.get(type(event))
        if handler is None:
            if isinstance(event, Resynced):
                self._resync(event)
            return None
        # Every event with a handler has a ``prompt_id`` (None on some servers' frames, found nowhere).
        tracked = self._prompts.get(event.prompt_id)  # type: ignore[union-attr, arg-type]
        if tracked is None or tracked.state.status in FINAL:
            # Events for a prompt that already ended are stale (e.g. buffered before a resync).
            return None
        if not handler(tracked, event):
            return None
        tracked.update_fraction()
        return tracked.state

    def apply_history(self, entry: HistoryEntry) -> PromptState:
        """Set a prompt's final state from its history entry (after a resync or when polling)."""
        tracked = self._prompts.get(entry.prompt_id)
        if tracked is None:
            tracked = _Tracked(PromptState(entry.prompt_id), entry.prompt, entry.outputs_to_execute or None)
            self._prompts[entry.prompt_id] = tracked
        state = tracked.state
        state.status = entry.outcome
        tracked.set_cached(set(entry.cached_nodes))
        state.cached_nodes = entry.cached_nodes
        state.outputs = list(entry.outputs)
        state.started_at = entry.started_at
        state.finished_at = entry.finished_at
        state.current_node = state.current_title = None
        state.eta_s = None
        if entry.error is not None and "prompt_id" in entry.error:
            if state.status == "interrupted":
                state.interrupted = ExecutionInterrupted.from_wire(entry.error)
            else:
                state.error = ExecutionError.from_wire(entry.error)
        if state.status == "success":
            state.fraction = 1.0
        tracked.update_fraction()
        self._trim()
        return state

    def _resync(self, event: Resynced) -> None:
        running = {item.prompt_id for item in event.queue.running}
        pending = {item.prompt_id for item in event.queue.pending}
        for prompt_id, tracked in list(self._prompts.items()):
            if tracked.state.finished:
                continue
            entry = event.finished.get(prompt_id)
            if entry is not None:
                self.apply_history(entry)
            elif prompt_id in running:
                if tracked.state.status == "queued":
                    tracked.state.status = "running"
            elif prompt_id not in pending and tracked.confirmed:
                self._lose(tracked)

    def _lose(self, tracked: _Tracked) -> None:
        # Neither queued, running nor in history: the server restarted and forgot it.
        # Without this it would show as running forever.
        state = tracked.state
        state.error = ExecutionError(
            prompt_id=state.prompt_id, node_id=state.current_node or "",
            node_type=state.current_title or "", exception_type=LOST, traceback=[],
            exception_message="the server no longer knows this prompt (it restarted?); queue it again")
        self._finish(state, "error", time.time())
        self._trim()

    @staticmethod
    def _on_start(tracked: _Tracked, event: ExecutionStart) -> bool:
        state = tracked.state
        state.status = "running"
        state.started_at = event.timestamp
        return True

    @staticmethod
    def _on_cached(tracked: _Tracked, event: ExecutionCached) -> bool:
        tracked.state.status = "running"
        tracked.set_cached(tracked.cached | set(event.nodes))
        tracked.state.cached_nodes = sorted(tracked.cached, key=_node_order)
        return True

    @staticmethod
    def _on_executed(tracked: _Tracked, event: Executed) -> bool:
        outputs = tracked.state.outputs
        tracked.mark_done(event.node)
        outputs.extend(f for f in event.files if f not in outputs)
        return True

    def _on_success(self, tracked: _Tracked, event: ExecutionSuccess) -> bool:
        self._finish(tracked.state, "success", event.timestamp)
        tracked.state.fraction = 1.0
        return True

    def _on_error(self, tracked: _Tracked, event: ExecutionError) -> bool:
        tracked.state.error = event
        self._finish(tracked.state, "error", event.timestamp)
        return True

    def _on_interrupted(self, tracked: _Tracked, event: ExecutionInterrupted) -> bool:
        tracked.state.interrupted = event
        self._finish(tracked.state, "interrupted", event.timestamp)
        return True

    @staticmethod
    def _on_preview(tracked: _Tracked, event: PreviewImage) -> bool:
        tracked.state.preview = event
        return True

    @staticmethod
    def _on_progress_state(tracked: _Tracked, event: ProgressState) -> bool:
        """Mark the nodes it reports finished; whether any was not known to be."""
        new = event.finished_nodes(tracked.done)
        for node_id in new:
            tracked.mark_done(node_id)
        # A sampler sends one with every step, mostly repeating what is known: no one needs to
        # redraw for it.
        return bool(new)

    def _on_executing(self, tracked: _Tracked, event: Executing) -> bool:
        state = tracked.state
        if event.node is None:
            # The end-of-prompt marker; servers that skip execution_success end here.
            self._finish(state, "success", None)
            state.fraction = 1.0
            return True
        state.status = "running"
        if state.current_node is not None and state.current_node != event.node:
            tracked.mark_done(state.current_node)
        state.current_node = event.node
        state.current_title = tracked.title(event.node)
        state.value = state.max = 0
        # A rate belongs to one node's steps; the next node's steps may be much slower or faster.
        state.it_per_s = state.eta_s = None
        return True

    def _on_progress(self, tracked: _Tracked, event: Progress) -> bool:
        node, value = event.node, event.value
        if node is None:
            return False
        state = tracked.state
        if state.current_node != node:
            state.current_node = node
            state.current_title = tracked.title(node)
        state.value, state.max = value, event.max
        if node != tracked.rate_node:
            state.it_per_s = None
        rate = tracked.sample(node, value, self._clock())
        if rate is not None:
            state.it_per_s = rate
        state.eta_s = tracked.steps_left() / state.it_per_s if state.it_per_s else None
        return True

    @staticmethod
    def _finish(state: PromptState, status: str, timestamp: float | None) -> None:
        state.status = status
        state.finished_at = timestamp
        state.eta_s = 0.0 if status == "success" else None
        if status == "success":
            state.current_node = state.current_title = None

    def _trim(self) -> None:
        # Called on every track and finish: under the cap (always, but for a long session) no scan at all.
        if len(self._prompts) <= self._max_finished:
            return
        finished = [pid for pid, t in self._prompts.items() if t.state.finished]
        for prompt_id in finished[: max(0, len(finished) - self._max_finished)]:
            del self._prompts[prompt_id]


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)
