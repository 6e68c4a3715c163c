"""A loopback ComfyUI stand-in that answers ``POST /prompt`` by replaying a recorded run."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from tests.conftest import load_fixture
from tests.loopback import serve_on_loopback


class TraceServer:
    """Replays ``<scenario>.post_prompt`` and ``<scenario>.ws_trace`` (or a ``validation_*`` 400).

    The websocket gets the recorded messages after the submit, without the
    recorded pauses; REST answers come from the recorded GET responses. A
    ``prompt_id`` in the submit becomes the prompt's id in the answer and in
    the replayed messages, as ComfyUI 0.8.0's ``server.py`` takes it.
    """

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.submitted: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        app.router.add_post("/prompt", self._prompt)
        app.router.add_get("/system_stats", self._recorded("system_stats"))
        app.router.add_get("/queue", self._recorded("queue_idle"))
        self._runner, self.url = await serve_on_loopback(app)
        return self.url

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _recorded(name: str):
        async def handler(_: web.Request) -> web.Response:
            return web.json_response(load_fixture(name)["body"])
        return handler

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client_id = request.query["clientId"]
        self.sockets[client_id] = ws
        await ws.send_str(json.dumps({"type": "status", "data": {
            "status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}}))
        async for _ in ws:
            pass
        return ws

    async def _prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.submitted.append(body)
        if self.scenario.startswith("validation_"):
            record = load_fixture(self.scenario)
            return web.json_response(record["body"], status=record["status"])
        answer = load_fixture(f"{self.scenario}.post_prompt")["body"]
        recorded = answer["prompt_id"]
        answer["prompt_id"] = str(body.get("prompt_id", recorded))
        task = asyncio.create_task(self._replay(self.sockets[body["client_id"]], recorded, answer["prompt_id"]))
        self._tasks.add(task)
        return web.json_response(answer)

    async def _replay(self, ws: web.WebSocketResponse, recorded: str, prompt_id: str) -> None:
        for record in load_fixture(f"{self.scenario}.ws_trace")[1:]:
            await ws.send_str(json.dumps(record["msg"]).replace(recorded, prompt_id))
