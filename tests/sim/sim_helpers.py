"""Helpers for the simulator tests: a websocket recorder and polling without sleeps in assertions."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

import aiohttp

from tests.conftest import load_fixture

#: Guards against hangs only; nothing asserts on elapsed time.
WAIT_LIMIT = 15.0


async def wait_until(check: Callable[[], Awaitable[Any] | Any], what: str, limit: float = WAIT_LIMIT) -> Any:
    """Poll ``check`` until it returns something truthy; fail (naming ``what``) if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.005)


class WsRecorder:
    """Collects every websocket message (text as parsed JSON, binary as bytes)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, client_id: str | None = "test-client"):
        self.session = session
        self.url = url.replace("http://", "ws://") + "/ws" + (f"?clientId={client_id}" if client_id else "")
        self.messages: list[Any] = []
        self.closed = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "WsRecorder":
        self.ws = await self.session.ws_connect(self.url)
        self._task = asyncio.create_task(self._read())
        await wait_until(lambda: self.texts(), "the first status message")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            self._task.cancel()

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for message in self.ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self.messages.append(json.loads(message.data))
                elif message.type == aiohttp.WSMsgType.BINARY:
                    self.messages.append(message.data)
        finally:
            self.closed.set()

    def texts(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if isinstance(m, dict)]

    def binaries(self) -> list[bytes]:
        return [m for m in self.messages if isinstance(m, bytes)]

    def types(self) -> list[str]:
        return [m["type"] for m in self.texts()]

    async def wait_for_end(self, prompt_id: str) -> list[dict[str, Any]]:
        """Wait for ``executing`` with ``node: null`` for ``prompt_id``; the text messages so far."""
        def ended() -> bool:
            return any(m["type"] == "executing" and m["data"].get("node") is None
                       and m["data"].get("prompt_id") == prompt_id for m in self.texts())
        await wait_until(ended, f"the end of prompt {prompt_id}")
        return self.texts()


def recorded_prompt(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(prompt, extra_data)`` of a recorded run's history entry (``success``, ``exec_error``...)."""
    entry = next(iter(load_fixture(f"{name}.history").values()))
    extra = {k: v for k, v in entry["prompt"][3].items() if k not in ("client_id", "create_time")}
    return entry["prompt"][2], extra


def recorded_types(name: str) -> list[str]:
    return [step["msg"]["type"] for step in load_fixture(f"{name}.ws_trace")]


def recorded_messages(name: str) -> list[dict[str, Any]]:
    return [step["msg"] for step in load_fixture(f"{name}.ws_trace")]


def key_shape(value: Any) -> Any:
    """The structure of a JSON value: dict keys (recursively) and list element shapes, no values."""
    if isinstance(value, dict):
        return {k: key_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [key_shape(value[0])] if value else []
    return type(value).__name__ if value is not None else None
