"""The prompt queue and history, shaped like ComfyUI's ``execution.PromptQueue``."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

#: ComfyUI's ``MAXIMUM_HISTORY_SIZE``.
MAX_HISTORY = 10_000


@dataclass(order=True)
class QueuedPrompt:
    """One queue entry; sorts by number (``front`` makes it negative), then arrival."""

    number: float
    seq: int
    prompt_id: str = field(compare=False)
    prompt: dict[str, Any] = field(compare=False)
    extra_data: dict[str, Any] = field(compare=False)
    outputs: list[str] = field(compare=False)

    def as_list(self) -> list[Any]:
        """The wire form: ``[number, prompt_id, prompt, extra_data, outputs_to_execute]``."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


class PromptQueue:
    """Pending prompts, the running one, and finished ones (bounded history, oldest dropped first)."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._pending: list[QueuedPrompt] = []
        self._seq = itertools.count()
        self._ready = asyncio.Event()
        self.running: QueuedPrompt | None = None
        self.history: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def put(self, number: float, prompt_id: str, prompt: dict[str, Any],
            extra_data: dict[str, Any], outputs: list[str]) -> QueuedPrompt:
        item = QueuedPrompt(number, next(self._seq), prompt_id, prompt, extra_data, outputs)
        heapq.heappush(self._pending, item)
        self._ready.set()
        self._on_change()
        return item

    async def get(self) -> QueuedPrompt:
        """Wait for the next prompt and mark it running."""
        while not self._pending:
            self._ready.clear()
            await self._ready.wait()
        self.running = heapq.heappop(self._pending)
        self._on_change()
        return self.running

    def task_done(self, entry: dict[str, Any]) -> None:
        """Record the running prompt's history entry and free the slot."""
        item = self.running
        self.running = None
        if item is not None:
            self.history[item.prompt_id] = entry
            while len(self.history) > MAX_HISTORY:
                self.history.popitem(last=False)
        self._on_change()

    @property
    def pending(self) -> list[QueuedPrompt]:
        return sorted(self._pending)

    def remaining(self) -> int:
        """``exec_info.queue_remaining``: pending plus running."""
        return len(self._pending) + (1 if self.running is not None else 0)

    def delete(self, prompt_id: str) -> bool:
        for item in self._pending:
            if item.prompt_id == prompt_id:
                self._pending.remove(item)
                heapq.heapify(self._pending)
                self._on_change()
                return True
        return False

    def wipe(self) -> None:
        self._pending.clear()
        self._on_change()

    def reset(self) -> None:
        """Forget everything, as a process restart does."""
        self._pending.clear()
        self.running = None
        self.history.clear()

    def history_slice(self, max_items: int | None = None, offset: int = -1) -> dict[str, Any]:
        """GET /history: the last ``max_items`` entries (or from ``offset``), oldest first."""
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        out: dict[str, Any] = {}
        for index, (prompt_id, entry) in enumerate(self.history.items()):
            if index >= offset:
                out[prompt_id] = entry
                if max_items is not None and len(out) >= max_items:
                    break
        return out
