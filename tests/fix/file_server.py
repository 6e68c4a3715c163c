"""A local HTTP file server with switchable misbehaviour, for download tests.

It answers ``Range`` as RFC 9110 describes and aiohttp's own file responses do
(``206`` with ``Content-Range: bytes first-last/total``, ``416`` with
``bytes */total`` past the end), and can be told to stop honouring ``Range``,
announce a wrong total, cut a connection, or send a login page instead.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from aiohttp import web

from pistachio_tui.sim.demo_fix import safetensors_bytes
from tests.loopback import serve_on_loopback


def fake_model(size: int) -> bytes:
    """``size`` bytes that are a valid safetensors file of random content, so downloads pass the
    content check the way a real model does."""
    return safetensors_bytes(size, os.urandom(4096))


LOGIN_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Sign in</body></html>"


@dataclass
class FileServer:
    """Serves ``files`` (name → bytes) on 127.0.0.1; knobs make it misbehave."""

    files: dict[str, bytes] = field(default_factory=dict)
    #: Requests (counted from 1) that send this many bytes and then drop the connection.
    drop_after: dict[int, int] = field(default_factory=dict)
    ignore_range: bool = False
    #: Requests (counted from 1) after this one ignore ``Range``, as a server whose support goes away.
    ignore_range_after: int | None = None
    #: Requests (counted from 1) after this one announce a total size off by one.
    wrong_total_after: int | None = None
    #: Answer every request with this status and an HTML login page instead of the file.
    login_page: int | None = None
    #: Paths answered with a 302 to the given location.
    redirects: dict[str, str] = field(default_factory=dict)
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
        if request.match_info["name"] in self.redirects:
            return web.Response(status=302, headers={"Location": self.redirects[request.match_info["name"]]})
        if self.login_page is not None:
            return web.Response(status=self.login_page, body=LOGIN_PAGE, content_type="text/html")
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        start, end = 0, len(data)
        rng = request.headers.get("Range")
        status = 200
        ignoring = self.ignore_range or (self.ignore_range_after is not None and number > self.ignore_range_after)
        if rng and not ignoring:
            first, _, last = rng.removeprefix("bytes=").partition("-")
            start = int(first)
            end = min(len(data), int(last) + 1) if last else len(data)
            if start >= len(data):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
        body = data[start:end]
        response = web.StreamResponse(status=status)
        response.content_type = "application/octet-stream"
        response.content_length = len(body)
        if status == 206:
            total = len(data)
            if self.wrong_total_after is not None and number > self.wrong_total_after:
                total += 1
            response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
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
