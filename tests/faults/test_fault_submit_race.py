"""A prompt that runs to its end before the client has read the answer to its POST /prompt
(a fully cached prompt on a fast server, or a slow proxy): its events arrive first."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.faults.helpers import Follower, assert_matches_history, slow_prompt, wait_until


class HoldPromptAnswer(httpx.AsyncBaseTransport):
    """Delivers the answer to ``POST /prompt`` only once ``release`` is set; all else at once."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/prompt"):
            await response.aread()
            await self.release.wait()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def submit_held(follower: Follower, transport: HoldPromptAnswer, submit) -> str:
    task = asyncio.create_task(submit())
    await wait_until(lambda: follower.ended, "the prompt's end on the websocket")
    transport.release.set()
    return await task


async def test_prompt_that_ends_before_the_submit_answer(sim):
    transport = HoldPromptAnswer()
    async with Follower(sim.url, transport=transport) as follower:
        prompt_id = await submit_held(follower, transport, lambda: follower.submit(slow_prompt(2)))
        await sim.hub.flush()
        assert follower.state(prompt_id).status == "success"


async def test_tracking_before_queueing_with_our_own_prompt_id(sim):
    """The workaround the soak benchmark uses: ComfyUI takes a client-chosen ``prompt_id``."""
    transport = HoldPromptAnswer()
    async with Follower(sim.url, transport=transport) as follower:
        prompt = slow_prompt(2)
        prompt_id = str(uuid.uuid4())
        follower.tracker.track(prompt_id, prompt)
        body = {"prompt": prompt, "client_id": follower.client.client_id, "prompt_id": prompt_id}
        await submit_held(follower, transport, lambda: follower.client.post_json("/prompt", body))
        state = await follower.wait_finished(prompt_id)
        entry = (await follower.client.history(prompt_id))[prompt_id]
    assert_matches_history(state, entry)
