"""A server that answers one byte at a time: every request ends by its overall deadline, not
whenever the server stops dribbling (httpx's timeout only bounds each read)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import ServerUnreachable
from tests.loopback import serve_on_loopback


async def _dribbling_server(interval: float, size: int) -> tuple[web.AppRunner, str]:
    async def dribble(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = size
        await response.prepare(request)
        for _ in range(size):
            await response.write(b" ")
            await asyncio.sleep(interval)
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dribble)
    return await serve_on_loopback(app)


async def test_a_dribbling_server_is_given_up_on_at_the_deadline():
    runner, url = await _dribbling_server(0.05, 400)  # 20 s to send the whole answer
    try:
        async with ComfyClient(url, timeout=0.2) as client:
            started = time.monotonic()
            with pytest.raises(ServerUnreachable, match="did not answer within 0.6 s"):
                await client.queue()
            elapsed = time.monotonic() - started
    finally:
        await runner.cleanup()
    assert elapsed < 2.0, f"held for {elapsed:.1f} s"


async def test_non_finite_sizes_and_wrong_shapes_are_bad_responses():
    """``/system_stats`` with Infinity/NaN sizes, ``/models`` answered with an object: a
    ``BadResponse`` naming the endpoint, not an OverflowError or a list of keys."""
    import httpx

    from pistachio_tui.comfy.errors import BadResponse

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/system_stats":
            return httpx.Response(200, text='{"system": {"ram_total": Infinity, "ram_free": NaN}, '
                                            '"devices": [{"name": "cuda:0", "vram_total": 1e999}]}')
        return httpx.Response(200, json={"checkpoints": 1})

    client = ComfyClient("http://comfy.test", transport=httpx.MockTransport(answer))
    try:
        with pytest.raises(BadResponse, match="/system_stats"):
            await client.system_stats()
        with pytest.raises(BadResponse, match="/models answer"):
            await client.models()
    finally:
        await client.aclose()
