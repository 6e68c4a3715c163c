"""A tiny scripted ComfyUI stand-in (aiohttp on loopback) for websocket reconnect tests."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.loopback import serve_on_loopback


class ScriptedComfy:
    """Serves ``/ws`` from scripts, one per connection; every script but the last ends in a drop.

    ``/queue`` and ``/history`` answer ``queue`` and ``history``; ``history``
    switches to ``history_after_drop`` once a socket has been dropped, which
    is how a prompt "finishes while the client is disconnected". With
    ``close_last`` the last script ends in a normal close frame (1001, going
    away), as a proxy in front of ComfyUI may send; ComfyUI 0.8.0 itself,
    stopped with SIGTERM, drops its sockets without one (the scripts' drop).
    """

    def __init__(self, scripts: list[list[str | bytes]], *, queue: dict[str, Any] | None = None,
                 history_after_drop: dict[str, Any] | None = None, require_header: str | None = None,
                 close_last: bool = False) -> None:
        self.scripts = scripts
        self.queue = queue or {"queue_running": [], "queue_pending": []}
        self.history: dict[str, Any] = {}
        self.history_after_drop = history_after_drop or {}
        self.require_header = require_header
        self.close_last = close_last
        self.connections = 0
        self.ws_headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/queue", self._queue)
        app.router.add_get("/history", self._history)
        self._runner, self.url = await serve_on_loopback(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _queue(self, _: web.Request) -> web.Response:
        return web.json_response(self.queue)

    async def _history(self, _: web.Request) -> web.Response:
        return web.json_response(self.history)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self.require_header and self.require_header not in request.headers:
            return web.Response(status=401, text="401 Unauthorized")
        self.ws_headers.append(dict(request.headers))
        index = self.connections
        self.connections += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        script = self.scripts[min(index, len(self.scripts) - 1)]
        for message in script:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_str(message)
        if index < len(self.scripts) - 1:
            # Drop without a close frame, like a crashed server or a dead proxy.
            self.history = self.history_after_drop
            request.transport.close()
            return ws
        if self.close_last:
            # After the client's feature flags, or its send of them would meet the close.
            await ws.receive()
            await ws.close(code=1001)
            return ws
        async for _ in ws:
            pass
        return ws
