"""Feeds the prompt journal from live server sessions, off the event loop.

Every prompt a session sees is written: queued and running ones from the queue
(they carry the API prompt, so a prompt lost in a restart can be queued again),
finished ones from the history (with outputs and timings) and lost ones from the
tracker. Each history entry is written once per session; writes run in a thread
one batch at a time, so a slow disk never stalls the screen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pistachio_tui.comfy.prompt_names import prompt_name
from pistachio_tui.comfy.session import ServerSession, SessionUpdate, UpdateKind
from pistachio_tui.journal import Journal, JournalEntry, JournalError, from_history, from_state

#: History entries remembered per server as already written (the session keeps 100 at most).
_SEEN_LIMIT = 1000


class JournalRecorder:
    """Call :meth:`on_update` with every session update; ``on_error`` hears about a failing disk once."""

    def __init__(self, journal: Journal, on_error: Callable[[str], None] | None = None) -> None:
        self.journal = journal
        self._on_error = on_error
        self._written: dict[str, dict[str, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._failed = False

    def on_update(self, update: SessionUpdate) -> None:
        entries = self._entries(update)
        if entries:
            task = asyncio.get_running_loop().create_task(self._write(entries))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _entries(self, update: SessionUpdate) -> list[JournalEntry]:
        session = update.session
        server = session.config.url
        written = self._written.setdefault(server, {})
        entries: list[JournalEntry] = []
        if update.kind == UpdateKind.QUEUE:
            # ComfyUI does not say when a prompt was queued: the first time it is seen waiting is close,
            # and the journal keeps the first time it is given.
            now = time.time()
            for status, items in (("running", session.queue.running), ("queued", session.queue.pending)):
                for item in items:
                    if written.get(item.prompt_id) != status:
                        written[item.prompt_id] = status
                        entries.append(JournalEntry(server, item.prompt_id, status, item.prompt, queued_at=now,
                                                    workflow=prompt_name(item.prompt, item.extra_data)))
        elif update.kind == UpdateKind.HISTORY:
            for entry in session.history.values():
                if written.get(entry.prompt_id) != entry.outcome:
                    written[entry.prompt_id] = entry.outcome
                    entries.append(from_history(server, entry, prompt_name(entry.prompt, entry.extra_data)))
        elif update.kind == UpdateKind.FINISHED and update.prompt is not None and update.prompt.lost:
            written[update.prompt.prompt_id] = "lost"
            entries.append(from_state(server, update.prompt))
        if len(written) > _SEEN_LIMIT:
            for prompt_id in list(written)[: len(written) - _SEEN_LIMIT]:
                del written[prompt_id]
        return entries

    async def _write(self, entries: list[JournalEntry]) -> None:
        async with self._lock:
            try:
                await asyncio.to_thread(self.journal.record, entries)
            except JournalError as exc:
                if not self._failed and self._on_error is not None:
                    self._on_error(f"Prompt journal not written: {exc}")
                self._failed = True

    async def close(self) -> None:
        """Finish the writes under way, then close the journal."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.journal.close)

    async def kept_prompt(self, session: ServerSession, prompt_id: str) -> dict | None:
        """The API prompt the journal kept for ``prompt_id`` on ``session``'s server, to queue it again."""
        entry = await asyncio.to_thread(self.journal.get, session.config.url, prompt_id)
        return entry.prompt if entry is not None and entry.prompt else None
