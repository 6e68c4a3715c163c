"""A ComfyUI server as a batch target: jobs go through its own queue."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import ComfyError, PromptRejected
from pistachio_tui.comfy.types import HistoryEntry
from pistachio_tui.fleet.targets import Output, TargetFailed


class ComfyTarget:
    """A ComfyUI server: jobs go into its queue; outputs come back through /view."""

    def __init__(self, client: ComfyClient, *, name: str | None = None, slots: int = 2,
                 poll_interval: float = 0.25, unreachable_grace: float = 10.0) -> None:
        self.client = client
        self.name = name or client.base_url
        self.slots = slots
        self._poll = poll_interval
        self._grace = unreachable_grace
        self._submitted: set[str] = set()

    async def check(self, node_types: set[str]) -> str | None:
        try:
            known = await self.client.object_info()
        except ComfyError as exc:
            return exc.message
        missing = sorted(node_types - set(known))
        return f"missing nodes: {', '.join(missing)}" if missing else None

    async def run(self, prompt: dict[str, Any]) -> list[Output]:
        # The id is chosen here (ComfyUI takes one) and known before the POST: a cancel that
        # arrives while it is under way still takes this prompt off the server.
        prompt_id = str(uuid.uuid4())
        self._submitted.add(prompt_id)
        try:
            try:
                await self.client.submit(prompt, prompt_id=prompt_id)
            except PromptRejected as exc:
                # Every target would reject it the same way only if they are alike;
                # a model missing here may exist elsewhere, so another target may try.
                raise TargetFailed(f"rejected: {exc.message}", refused=True) from None
            except ComfyError as exc:
                raise TargetFailed(exc.message) from None
            entry = await self._wait(prompt_id)
            if entry.status != "success":
                raise TargetFailed(f"execution {entry.status}: {entry.error or 'no details'}", retry=False)
            outputs = []
            for out in entry.outputs:
                if out.type != "output":
                    continue
                try:
                    data = await self.client.view(out.filename, out.subfolder, out.type)
                except ComfyError as exc:
                    raise TargetFailed(f"cannot fetch {out.filename}: {exc.message}") from None
                outputs.append(Output(out.filename, data))
            return outputs
        finally:
            self._submitted.discard(prompt_id)

    async def _wait(self, prompt_id: str) -> HistoryEntry:
        """Poll until the prompt is in history; a restart that forgot it fails the job."""
        down_since: float | None = None
        while True:
            try:
                entry = await self._finished(prompt_id)
                if entry is not None:
                    return entry
                if prompt_id not in (await self.client.queue()).ids():
                    # It may have finished between the two calls: ask history again
                    # before calling it lost.
                    entry = await self._finished(prompt_id)
                    if entry is None:
                        raise TargetFailed("the server lost the prompt (it restarted?)")
                    return entry
                down_since = None
            except ComfyError as exc:
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since > self._grace:
                    raise TargetFailed(f"server gone: {exc.message}") from None
            await asyncio.sleep(self._poll)

    async def _finished(self, prompt_id: str) -> HistoryEntry | None:
        entry = (await self.client.history(prompt_id)).get(prompt_id)
        if entry is not None and (entry.completed or entry.status in ("success", "error")):
            return entry
        return None

    async def cancel(self) -> None:
        """Take this batch's prompts off the server, and only those: a bare ``POST /interrupt``
        stops whatever runs, another client's prompt too, so each is named (ComfyUI then
        stops it only if it is the one running); newer servers cancel a job atomically."""
        ids = list(self._submitted)
        try:
            left = [prompt_id for prompt_id in ids if not await self.client.cancel_job(prompt_id)]
            if left:
                await self.client.delete(left)
                for prompt_id in left:
                    await self.client.interrupt(prompt_id)
        except ComfyError:
            pass  # a target that is gone has nothing left to cancel

    async def aclose(self) -> None:
        await self.client.aclose()
