"""Live state of the configured ComfyUI servers, for any front end (no UI here).

A :class:`ServerSession` owns one server's client, websocket stream, prompt
tracker and health poll, and tells subscribers what changed with small
:class:`SessionUpdate` values. The UI renders the session's attributes when
told; it never talks to the wire itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pistachio_tui.comfy.errors import ComfyError
from pistachio_tui.config import ServerConfig
from pistachio_tui.failures import cancelled_meanwhile, unexpected_reason

if TYPE_CHECKING:
    from pistachio_tui.comfy import events, types
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.stream import Backoff, EventStream
    from pistachio_tui.comfy.tracker import PromptState, PromptTracker
    from pistachio_tui.comfy.types import HistoryEntry, Job, LogEntry, QueueState, SystemStats
else:
    from pistachio_tui.lazy import lazy_module

    # Events, the tracker and the server's answers load when a session starts listening: the app
    # draws its servers first.
    events = lazy_module("pistachio_tui.comfy.events")
    types = lazy_module("pistachio_tui.comfy.types")

CONNECTED = "connected"
RECONNECTING = "reconnecting"
DOWN = "down"
CONNECTING = "connecting"



class UpdateKind(StrEnum):
    """What a subscriber is told changed; it re-reads the session's attributes."""

    HEALTH = "health"
    QUEUE = "queue"
    PROGRESS = "progress"
    FINISHED = "finished"
    HISTORY = "history"
    LOGS = "logs"


#: The kinds under their module-level names, still used by the app shell and the benchmarks.
HEALTH, QUEUE, PROGRESS = UpdateKind.HEALTH, UpdateKind.QUEUE, UpdateKind.PROGRESS
FINISHED, HISTORY, LOGS = UpdateKind.FINISHED, UpdateKind.HISTORY, UpdateKind.LOGS
#: ``extra_data.preview_method`` asked for when previews are on (as the official frontend sends it).
PREVIEW_METHOD = "auto"
#: At most this many history entries are fetched at once when /api/jobs lists new ones.
_DETAIL_CONCURRENCY = 8


@dataclass(frozen=True)
class SessionUpdate:
    """``kind`` of change on ``session``; ``prompt`` is set for progress and finished updates."""

    session: ServerSession
    kind: UpdateKind
    prompt: PromptState | None = None


Subscriber = Callable[[SessionUpdate], None]


class ServerSession:
    """One ComfyUI server followed live: health, queue, running prompt, recent history.

    ``state`` is ``connecting`` until the first health answer, then
    ``connected``, ``reconnecting`` (the websocket dropped, HTTP still works)
    or ``down`` (HTTP fails too); ``reason`` says why when not connected.
    """

    def __init__(self, config: ServerConfig, *, health_interval: float = 3.0, max_history: int = 100,
                 max_samples: int = 120, backoff: Backoff | None = None, client: ComfyClient | None = None,
                 max_log_lines: int = 2000) -> None:
        self.config = config
        self._tracker: PromptTracker | None = None
        self._client = client
        self._backoff = backoff
        self._event_stream: EventStream | None = None
        self.health_interval = health_interval
        self.max_history = max_history
        self.state = CONNECTING
        self.reason = ""
        self.stats: SystemStats | None = None
        self._queue: QueueState | None = None
        #: Newest first, at most ``max_history`` entries.
        self.history: OrderedDict[str, HistoryEntry] = OrderedDict()
        #: Fraction of the first device's VRAM in use, one sample per health poll.
        self.vram_used: deque[float] = deque(maxlen=max_samples)
        self._ws_up = False
        #: Why the live event stream last broke with an error nothing expected ("" when it did not).
        self._stream_error = ""
        self._subscribers: list[Subscriber] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._poke = asyncio.Event()
        #: Ask the server for live previews with each prompt queued here.
        self.previews = False
        #: Server console lines received since ``follow_logs`` (newest last, bounded).
        self.log_lines: deque[LogEntry] = deque(maxlen=max_log_lines)
        self._logs_subscribed = False
        #: Lightweight list of recent finished prompts (``/api/jobs``), newest first; empty on older servers.
        self.jobs: list[Job] = []

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def queue(self) -> QueueState:
        """The server's queue as last polled (empty until then)."""
        if self._queue is None:
            self._queue = types.QueueState(running=[], pending=[])
        return self._queue

    @queue.setter
    def queue(self, queue: QueueState) -> None:
        self._queue = queue

    @property
    def tracker(self) -> PromptTracker:
        """What is known of each prompt, built on first use (with the event classes it follows)."""
        if self._tracker is None:
            from pistachio_tui.comfy.tracker import PromptTracker

            self._tracker = PromptTracker()
        return self._tracker

    @property
    def client(self) -> ComfyClient:
        """The server's REST client, built on first use: an app shows its servers before httpx loads."""
        if self._client is None:
            from pistachio_tui.comfy.client import ComfyClient

            self._client = ComfyClient(self.config.url, headers=self.config.headers or None)
        return self._client

    @property
    def _stream(self) -> EventStream:
        """The websocket stream, built (and websockets imported) when the session starts listening."""
        if self._event_stream is None:
            from pistachio_tui.comfy.stream import EventStream

            self._event_stream = EventStream(self.client, backoff=self._backoff)
        return self._event_stream

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` on every change; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _emit(self, kind: UpdateKind, prompt: PromptState | None = None) -> None:
        update = SessionUpdate(self, kind, prompt)
        for callback in list(self._subscribers):
            callback(update)

    def start(self) -> None:
        """Begin polling and listening (call from a running event loop)."""
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._health_loop()), asyncio.create_task(self._event_loop())]

    async def stop(self) -> None:
        """Stop every background task and close the connection."""
        if self._event_stream is not None:
            await self._event_stream.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()

    def check_now(self) -> None:
        """Run the next health poll at once (e.g. after the user pressed refresh)."""
        self._poke.set()

    # -- derived views -------------------------------------------------

    def running(self) -> PromptState | None:
        """The prompt executing now, if the server runs one we know of."""
        for item in self.queue.running:
            state = self.tracker.get(item.prompt_id)
            if state is not None and not state.finished:
                return state
        return None

    def pending(self) -> list[PromptState]:
        """Queued prompts in server order."""
        return [self.tracker.track_item(item) for item in self.queue.pending]

    def prompt_titles(self, prompt_id: str) -> dict[str, str]:
        """Node id → title for a prompt we have seen (for readable errors)."""
        prompt = self._prompt_of(prompt_id)
        return {node_id: str((node.get("_meta") or {}).get("title") or node.get("class_type", node_id))
                for node_id, node in prompt.items() if isinstance(node, dict)}

    def _prompt_of(self, prompt_id: str) -> dict[str, Any]:
        entry = self.history.get(prompt_id)
        if entry is not None:
            return entry.prompt
        for item in self.queue.running + self.queue.pending:
            if item.prompt_id == prompt_id:
                return item.prompt
        return {}

    # -- commands --------------------------------------------------------

    async def submit(self, prompt: dict[str, Any], extra_data: dict[str, Any] | None = None,
                     front: bool = False) -> PromptState:
        """Queue a prompt and follow it; raises ``PromptRejected`` with the server's report.

        With ``previews`` on, the prompt asks for live previews (``extra_data.preview_method``);
        the server sends them only for prompts that ask, unless it was started with ``--preview-method``.
        """
        if self.previews and "preview_method" not in (extra_data or {}):
            extra_data = {**(extra_data or {}), "preview_method": PREVIEW_METHOD}
        state = await self.tracker.submit(self.client, prompt, extra_data, front=front)
        await self.refresh_queue()
        return state

    async def move_to_front(self, prompt_id: str) -> PromptState | None:
        """Re-queue a pending prompt at the front (ComfyUI has no reorder call)."""
        item = next((i for i in self.queue.pending if i.prompt_id == prompt_id), None)
        if item is None:
            return None
        await self.client.delete([prompt_id])
        return await self.submit(item.prompt, item.extra_data, front=True)

    async def delete(self, prompt_ids: list[str]) -> None:
        await self.client.delete(prompt_ids)
        await self.refresh_queue()

    async def interrupt(self, prompt_id: str | None = None) -> bool:
        """Stop the running prompt (``prompt_id``: only if that one runs); False when nothing was sent.

        The server is always told which prompt to stop, so a click that arrives just after that
        prompt ended cannot stop the next one.
        """
        await self.refresh_queue()
        running = [item.prompt_id for item in self.queue.running]
        target = prompt_id if prompt_id is not None else (running[0] if running else None)
        if target is None or target not in running:
            return False
        await self.client.interrupt(target)
        return True

    async def cancel(self, prompt_id: str) -> None:
        """Take one prompt off the server, pending or running.

        Newer servers do this atomically (``POST /api/jobs/{id}/cancel``); elsewhere a pending
        prompt is deleted and a running one interrupted by its id.
        """
        if await self.client.cancel_job(prompt_id):
            await self.refresh_queue()
            return
        await self.refresh_queue()
        if any(item.prompt_id == prompt_id for item in self.queue.pending):
            await self.delete([prompt_id])
        else:
            await self.interrupt(prompt_id)

    async def follow_logs(self) -> bool:
        """Have the server push its console as ``logs`` events (``UpdateKind.LOGS`` updates, ``log_lines``).

        Returns False on a server without the subscription; poll :meth:`logs` there.
        """
        self._logs_subscribed = await self.client.subscribe_logs(True)
        return self._logs_subscribed

    async def unfollow_logs(self) -> None:
        if self._logs_subscribed:
            self._logs_subscribed = False
            with contextlib.suppress(ComfyError):
                await self.client.subscribe_logs(False)

    async def free(self) -> None:
        await self.client.free()

    async def logs(self) -> list[LogEntry]:
        return await self.client.logs()

    async def refresh_node_list(self) -> int:
        """Forget the cached node definitions and fetch them again; returns how many there are."""
        return len(await self.client.object_info(refresh=True))

    async def refresh_queue(self) -> None:
        before = self.queue.ids()
        self._set_queue(await self.client.queue())
        await self._settle(before - self.queue.ids())

    def _set_queue(self, queue: QueueState) -> None:
        # ComfyUI lists pending prompts in heap order; people expect run order.
        queue.pending.sort(key=lambda item: item.number)
        for item in queue.running + queue.pending:
            self.tracker.track_item(item)
        for item in queue.running:
            # Another client's prompt gets no execution events here: the queue is all we see.
            if self.tracker.mark_running(item.prompt_id) is not None:
                self._emit(UpdateKind.PROGRESS, self.tracker.get(item.prompt_id))
        self.queue = queue
        self._emit(UpdateKind.QUEUE)

    async def _settle(self, gone: set[str]) -> None:
        """End the prompts that left the queue without us seeing them end.

        ComfyUI sends a prompt's execution events only to the client that queued it, so
        another client's prompt (a browser tab, a script) ends for us only here: looked
        up in ``/api/jobs/{id}`` where the server has it, else in ``/history/{id}``.
        """
        for prompt_id in sorted(gone):
            state = self.tracker.get(prompt_id)
            if state is None or state.finished:
                continue
            entry = await self.client.finished_entry(prompt_id)
            if entry is not None:
                self._merge_history({prompt_id: entry})
                self._emit(UpdateKind.FINISHED, self.tracker.get(prompt_id) or state)
            elif not state.ours and state.status == "queued":
                # Deleted from the queue before it ran: nothing will ever finish it.
                self.tracker.forget(prompt_id)

    async def refresh_history(self) -> None:
        """Recent finished prompts: listed by ``/api/jobs`` where the server has it (small answers,
        details fetched only for prompts not seen yet), else the newest of ``/history``."""
        if not await self.client.has_jobs():
            self._merge_history(await self.client.history(max_items=self.max_history))
            return
        page = await self.client.jobs(statuses=[types.JOB_COMPLETED, types.JOB_FAILED], limit=self.max_history)
        self.jobs = page.jobs
        limit = asyncio.Semaphore(_DETAIL_CONCURRENCY)

        async def detail(prompt_id: str) -> HistoryEntry | None:
            async with limit:
                return await self.client.finished_entry(prompt_id)

        new = [job.id for job in page.jobs if job.id not in self.history]
        found = await asyncio.gather(*(detail(prompt_id) for prompt_id in new))
        self._merge_history({entry.prompt_id: entry for entry in found if entry is not None})

    def _merge_history(self, entries: dict[str, HistoryEntry]) -> None:
        ordered = sorted(entries.values(), key=lambda e: e.number, reverse=True)
        for entry in ordered:
            self.tracker.apply_history(entry)
        merged = {e.prompt_id: e for e in ordered}
        merged.update({k: v for k, v in self.history.items() if k not in merged})
        newest = sorted(merged.values(), key=lambda e: e.number, reverse=True)[: self.max_history]
        self.history = OrderedDict((e.prompt_id, e) for e in newest)
        self._emit(UpdateKind.HISTORY)

    # -- background ------------------------------------------------------

    def _set_state(self, state: str, reason: str = "") -> None:
        if (state, reason) != (self.state, self.reason):
            self.state, self.reason = state, reason
            self._emit(UpdateKind.HEALTH)

    async def _health_loop(self) -> None:
        first = True
        while True:
            try:
                self.stats = await self.client.system_stats()
                self._sample_vram(self.stats)
                if first or self.state == DOWN:
                    if not self._ws_up:
                        # Back from an outage: reconnect now, not at the end of the backoff.
                        self._stream.retry_now()
                    await self.refresh_queue()
                    await self.refresh_history()
                    first = False
                self._set_state(CONNECTED if self._ws_up else RECONNECTING,
                                "" if self._ws_up else self._stream_error or "waiting for the live event stream")
                self._emit(UpdateKind.HEALTH)
            except ComfyError as exc:
                self._set_state(DOWN, exc.message)
            except Exception as exc:
                # Anything else (a URL the HTTP library cannot use, a bug in a parser) must not end
                # the loop: the server would read "connecting" forever with no reason given.
                if cancelled_meanwhile():
                    raise asyncio.CancelledError from exc
                self._set_state(DOWN, unexpected_reason(exc))
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.health_interval)

    async def _look_up_older(self, event: events.Resynced, unfinished: list[PromptState]) -> None:
        """The resync reads only the newest history: ask the server about each prompt we follow
        that it does not cover, so one that ended long ago is not taken for lost."""
        queued = {item.prompt_id for item in [*event.queue.running, *event.queue.pending]}
        for state in unfinished:
            if state.prompt_id not in event.finished and state.prompt_id not in queued:
                with contextlib.suppress(ComfyError):
                    event.finished.update(await self.client.history(state.prompt_id))

    def _sample_vram(self, stats: SystemStats) -> None:
        device = stats.main_device
        if device is not None and device.vram_total:
            self.vram_used.append(1 - device.vram_free / device.vram_total)

    async def _event_loop(self) -> None:
        while True:
            try:
                async for event in self._stream:
                    try:
                        await self._on_event(event)
                    except ComfyError as exc:
                        # A REST follow-up failed mid-event: the health poll reports the outage.
                        self.reason = exc.message
                    except Exception as exc:
                        # One event we could not handle must not stop us hearing the next ones.
                        if cancelled_meanwhile():
                            raise asyncio.CancelledError from exc
                        self.reason = unexpected_reason(exc)
                        self._emit(UpdateKind.HEALTH)
                return
            except Exception as exc:
                # The stream itself broke: say why (the health poll keeps showing it) and open a new one.
                if cancelled_meanwhile():
                    raise asyncio.CancelledError from exc
                self._ws_up = False
                self._stream_error = f"the live event stream failed: {unexpected_reason(exc)}"
                if self.state != DOWN:
                    self._set_state(RECONNECTING, self._stream_error)
            await asyncio.sleep(self.health_interval)

    async def _on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Connected):
            self._ws_up = True
            self._stream_error = ""
            if self.stats is not None:
                self._set_state(CONNECTED)
            if self._logs_subscribed:
                # A restarted server forgot the subscription.
                with contextlib.suppress(ComfyError):
                    await self.client.subscribe_logs(True)
            return
        if isinstance(event, events.LogLines):
            self.log_lines.extend(event.entries)
            self._emit(UpdateKind.LOGS)
            return
        if isinstance(event, events.PreviewImage) and event.prompt_id is None:
            # A type-1 frame names no prompt: it belongs to the one running now.
            running = self.running()
            if running is None:
                return
            event = replace(event, prompt_id=running.prompt_id)
        if isinstance(event, events.Disconnected):
            self._ws_up = False
            # When HTTP is failing too, the health poll's reason is the one to show.
            if self.state == CONNECTED:
                self._set_state(RECONNECTING, event.reason)
            self.check_now()
            return
        if isinstance(event, events.Resynced):
            unfinished = [state for state in self.tracker.states() if not state.finished]
            await self._look_up_older(event, unfinished)
            self.tracker.feed(event)
            self._merge_history(event.finished)
            self._set_queue(event.queue)
            # Prompts that ended while the socket was down (or that the server forgot) end here.
            for ended in unfinished:
                if ended.finished:
                    self._emit(UpdateKind.FINISHED, ended)
            return
        if isinstance(event, events.Status):
            await self.refresh_queue()
            return
        prompt_id = getattr(event, "prompt_id", None)
        if isinstance(event, events.ExecutionStart) and prompt_id and self.tracker.get(prompt_id) is None:
            await self.refresh_queue()
        state = self.tracker.feed(event)
        if state is None:
            return
        if isinstance(event, (events.ExecutionSuccess, events.ExecutionError, events.ExecutionInterrupted)):
            with contextlib.suppress(ComfyError):
                entries = await self.client.history(state.prompt_id)
                self._merge_history(entries)
            self._emit(UpdateKind.FINISHED, self.tracker.get(state.prompt_id) or state)
        else:
            self._emit(UpdateKind.PROGRESS, state)


class SessionManager:
    """Every configured server's session, and which one the user is looking at."""

    def __init__(self, servers: list[ServerConfig], *, health_interval: float = 3.0,
                 backoff: Backoff | None = None) -> None:
        self.health_interval = health_interval
        self.backoff = backoff
        self.sessions: dict[str, ServerSession] = {}
        self.active_name: str | None = None
        self._subscribers: list[Subscriber] = []
        for config in servers:
            self._create(config)

    @property
    def active(self) -> ServerSession | None:
        return self.sessions.get(self.active_name) if self.active_name else None

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback`` on every change of any session."""
        self._subscribers.append(callback)

    def _forward(self, update: SessionUpdate) -> None:
        for callback in list(self._subscribers):
            callback(update)

    def _create(self, config: ServerConfig) -> ServerSession:
        session = ServerSession(config, health_interval=self.health_interval, backoff=self.backoff)
        session.subscribe(self._forward)
        self.sessions[config.name] = session
        if self.active_name is None:
            self.active_name = config.name
        return session

    def start(self) -> None:
        for session in self.sessions.values():
            session.start()

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.sessions.values()))

    def add(self, config: ServerConfig) -> ServerSession:
        """Follow a new server (started at once when called inside a running loop)."""
        session = self._create(config)
        session.start()
        return session

    async def remove(self, name: str) -> None:
        session = self.sessions.pop(name, None)
        if session is None:
            return
        await session.stop()
        if self.active_name == name:
            self.active_name = next(iter(self.sessions), None)
        self._forward(SessionUpdate(session, UpdateKind.HEALTH))

    async def replace(self, old_name: str, config: ServerConfig) -> ServerSession:
        """Apply an edited server config (its connection is rebuilt)."""
        was_active = self.active_name == old_name
        await self.remove(old_name)
        session = self.add(config)
        if was_active:
            self.active_name = config.name
        return session

    def set_active(self, name: str) -> None:
        if name in self.sessions:
            self.active_name = name
