"""Submitting through the tracker: tracked before the POST, untracked when refused, lost on restart."""

from __future__ import annotations

import asyncio

import pytest

from pistachio_tui.comfy.errors import ServerError
from pistachio_tui.comfy.events import Resynced
from pistachio_tui.comfy.tracker import PromptTracker
from pistachio_tui.comfy.types import QueueItem, QueueState, SubmitResult

PROMPT = {"1": {"class_type": "SaveImage", "inputs": {}}}
EMPTY = Resynced(QueueState([], []), {})


class HeldClient:
    """Stands in for ComfyClient.submit: holds the POST open until released, or fails it."""

    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[str] = []
        self.release = asyncio.Event()
        self.error = error

    async def submit(self, prompt, extra_data=None, front=False, prompt_id=None) -> SubmitResult:
        self.sent.append(prompt_id)
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return SubmitResult(prompt_id, 1)


async def test_prompt_is_tracked_under_the_id_it_is_sent_with_before_the_answer():
    tracker, client = PromptTracker(), HeldClient()
    task = asyncio.create_task(tracker.submit(client, PROMPT))
    while not client.sent:
        await asyncio.sleep(0)
    (prompt_id,) = client.sent
    assert tracker.get(prompt_id).status == "queued"
    # A resync taken before the server has even seen the POST must not end it.
    tracker.feed(EMPTY)
    assert tracker.get(prompt_id).status == "queued"
    client.release.set()
    state = await task
    assert state.prompt_id == prompt_id and state.ours


async def test_a_failed_submit_stops_the_tracking():
    tracker, client = PromptTracker(), HeldClient(ServerError("boom", status=500, body=""))
    client.release.set()
    with pytest.raises(ServerError):
        await tracker.submit(client, PROMPT)
    assert tracker.states() == []


@pytest.mark.parametrize("where", ["running", "pending"])
async def test_a_prompt_the_server_still_holds_is_not_lost(where):
    tracker, client = PromptTracker(), HeldClient()
    client.release.set()
    state = await tracker.submit(client, PROMPT)
    item = QueueItem(1, state.prompt_id, PROMPT, {}, ["1"])
    queue = QueueState([item], []) if where == "running" else QueueState([], [item])
    tracker.feed(Resynced(queue, {}))
    assert state.status == ("running" if where == "running" else "queued")
    assert not state.lost


async def test_a_prompt_the_server_forgot_ends_as_lost():
    tracker, client = PromptTracker(), HeldClient()
    client.release.set()
    state = await tracker.submit(client, PROMPT)
    tracker.feed(EMPTY)
    assert state.status == "error" and state.lost
    assert "queue it again" in state.error.exception_message
