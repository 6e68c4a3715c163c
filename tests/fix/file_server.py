"""A local HTTP file server with switchable misbehaviour, for download tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from tests.loopback import serve_on_loopback


@dataclass
class FileServer:
    """Serves ``files`` (name → bytes) on 127.0.0.1; knobs make it misbehave."""

    files: dict[str, bytes] = field(default_factory=dict)
    #: Requests (counted from 1) that send this many bytes and then drop the connection.
    drop_after: dict[int, int] = field(default_factory=dict)
    ignore_range: bool = False
    token: str | None = None
    #: When set, the body is sent in two halves with a wait on this event between them.
    gate: asyncio.Event | None = None
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{name:.+}", self._serve)
        self._runner, self.url = await serve_on_loopback(app)
        return self.url

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        number = len(self.requests)
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=401, text="unauthorised")
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        start = 0
        rng = request.headers.get("Range")
        status = 200
        if rng and not self.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
        body = data[start:]
        response = web.StreamResponse(status=status)
        response.content_length = len(body)
        if status == 206:
            response.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        await response.prepare(request)
        cut = self.drop_after.get(number)
        if cut is not None:
            await response.write(body[:cut])
            request.transport.close()
            return response
        if self.gate is not None:
            half = len(body) // 2
            await response.write(body[:half])
            await self.gate.wait()
            body = body[half:]
        await response.write(body)
        await response.write_eof()
        return response
