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


STATS = '{"system": {"ram_total": 100, "ram_free": 50}, "devices": [{"name": "cuda:0", "vram_total": 100, "vram_free": 50}]}'


@pytest.mark.parametrize("stats", [
    STATS.replace('"ram_total": 100', '"ram_total": Infinity'),
    STATS.replace('"ram_free": 50', '"ram_free": NaN'),
    STATS.replace('"vram_total": 100', '"vram_total": 1e999'),
    STATS.replace('"vram_free": 50', '"vram_free": -Infinity'),
    STATS.replace('"vram_free": 50', '"vram_free": 1.5e300'),
    STATS.replace('"ram_free": 50', '"ram_free": -1'),
    STATS.replace('"ram_free": 50', '"ram_free": "50"'),
], ids=["inf", "nan", "1e999", "-inf", "1.5e300", "negative", "string"])
async def test_non_finite_sizes_and_wrong_shapes_are_bad_responses(stats):
    """``/system_stats`` with a size that is no byte count (Infinity, NaN, negative, beyond any
    memory), ``/models`` answered with an object: a ``BadResponse`` naming the endpoint and the
    field, not an OverflowError, a list of keys, or a 10^300-byte figure drawn on the GPU screen."""
    import httpx

    from pistachio_tui.comfy.errors import BadResponse

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/system_stats":
            return httpx.Response(200, text=stats)
        return httpx.Response(200, json={"checkpoints": 1})

    client = ComfyClient("http://comfy.test", transport=httpx.MockTransport(answer))
    try:
        with pytest.raises(BadResponse, match=r"/system_stats answer .*(ram|vram)_\w+ = .* is not a size in bytes"):
            await client.system_stats()
        with pytest.raises(BadResponse, match="/models answer"):
            await client.models()
    finally:
        await client.aclose()
    async with ComfyClient("http://comfy.test", transport=httpx.MockTransport(
            lambda request: httpx.Response(200, text=STATS))) as sane:
        assert (await sane.system_stats()).devices[0].vram_free == 50


async def test_run_keeps_its_timeout_when_the_websocket_close_never_completes(tmp_path):
    """``run --timeout 8`` took about 18 s against a server that never answers the websocket
    close: the whole command must end within its timeout plus the one bounded close wait."""
    import json

    from pistachio_tui.cli import exit_codes, main
    from pistachio_tui.comfy.stream import CLOSE_TIMEOUT
    from tests.conftest import load_fixture

    async def deaf_ws(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoclose=False)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}}))
        await asyncio.sleep(3600)  # never reads: the client's close frame is never answered
        return ws

    async def accept(request: web.Request) -> web.Response:
        return web.json_response({"prompt_id": "p-1", "number": 1, "node_errors": {}})

    def answer(body):
        async def handler(request: web.Request) -> web.Response:
            return web.json_response(body)
        return handler

    app = web.Application()
    app.router.add_get("/ws", deaf_ws)
    app.router.add_post("/prompt", accept)
    app.router.add_get("/queue", answer({"queue_running": [[1, "p-1", {}, {}, ["9"]]], "queue_pending": []}))
    app.router.add_get("/history/{id}", answer({}))
    app.router.add_get("/system_stats", answer(load_fixture("system_stats")["body"]))
    runner, url = await serve_on_loopback(app, shutdown_timeout=0.1)
    prompt = tmp_path / "prompt.json"
    prompt.write_text(json.dumps({"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}))
    try:
        started = time.monotonic()
        code = await asyncio.to_thread(main, ["run", str(prompt), "--server", url, "--timeout", "0.5"])
        elapsed = time.monotonic() - started
    finally:
        await runner.cleanup()
    assert code == exit_codes.FAILED
    assert elapsed < 0.5 + CLOSE_TIMEOUT + 1.5, f"run --timeout 0.5 took {elapsed:.1f} s"
