"""The simulator's websocket connections and how messages reach them."""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

#: ComfyUI's binary event numbers (``server.BinaryEventTypes``).
PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
#: Image type numbers inside a PREVIEW_IMAGE frame.
IMAGE_TYPE_JPEG = 1


@dataclass
class Client:
    """One open websocket: the sid it was given and what its first message said it supports."""

    sid: str
    ws: web.WebSocketResponse
    transport: Any
    feature_flags: dict[str, Any] = field(default_factory=dict)


def encode_preview(jpeg: bytes, metadata: dict[str, Any] | None = None) -> bytes:
    """A binary JPEG preview frame as ComfyUI's ``server.py`` lays it out (big-endian event, then payload).

    Type 1 (``send_image``): image type, image. Type 4 (``send_image_with_metadata``): metadata
    length, metadata JSON with ``image_type`` added, image.
    """
    if metadata is None:
        return struct.pack(">I", PREVIEW_IMAGE) + struct.pack(">I", IMAGE_TYPE_JPEG) + jpeg
    meta = json.dumps({**metadata, "image_type": "image/jpeg"}).encode()
    return struct.pack(">I", PREVIEW_IMAGE_WITH_METADATA) + struct.pack(">I", len(meta)) + meta + jpeg


class Hub:
    """Connected clients by sid. ``sid=None`` broadcasts, as ComfyUI's ``send_sync`` does.

    Messages go through one outbox drained by one task, so they reach every
    client in the order they were emitted, whoever emitted them.
    """

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self._outbox: asyncio.Queue[tuple[str | None, str | bytes | tuple[bytes, dict[str, Any]]]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._pump is None:
            self._pump = asyncio.create_task(self._drain())

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            try:
                await self._pump
            except asyncio.CancelledError:
                pass
            self._pump = None

    async def flush(self) -> None:
        """Wait until everything emitted so far has been handed to the sockets."""
        await self._outbox.join()

    def emit(self, event: str, data: Any, sid: str | None = None) -> None:
        """Queue ``{"type": event, "data": data}`` for one client, or all when ``sid`` is None."""
        self._outbox.put_nowait((sid, json.dumps({"type": event, "data": data})))

    def emit_preview(self, jpeg: bytes, metadata: dict[str, Any], sid: str | None = None) -> None:
        """Queue a preview image; clients that announced ``supports_preview_metadata`` get the metadata form."""
        self._outbox.put_nowait((sid, (jpeg, metadata)))

    async def _drain(self) -> None:
        while True:
            sid, payload = await self._outbox.get()
            try:
                for client in self._targets(sid):
                    if isinstance(payload, tuple):
                        png, metadata = payload
                        wants_meta = bool(client.feature_flags.get("supports_preview_metadata"))
                        await _deliver(client, encode_preview(png, metadata if wants_meta else None))
                    else:
                        await _deliver(client, payload)
            finally:
                self._outbox.task_done()

    def add(self, client: Client) -> None:
        self.clients[client.sid] = client

    def remove(self, client: Client) -> None:
        if self.clients.get(client.sid) is client:
            del self.clients[client.sid]

    def _targets(self, sid: str | None) -> list[Client]:
        if sid is None:
            return list(self.clients.values())
        client = self.clients.get(sid)
        return [client] if client is not None else []

    def drop_all(self) -> None:
        """Cut every socket without a close frame, as a crashed server or a broken network does."""
        for client in list(self.clients.values()):
            if client.transport is not None:
                client.transport.abort()
        self.clients.clear()


async def _deliver(client: Client, payload: str | bytes) -> None:
    if client.ws.closed:
        return
    try:
        if isinstance(payload, bytes):
            await client.ws.send_bytes(payload)
        else:
            await client.ws.send_str(payload)
    except (ConnectionError, RuntimeError):
        # The peer went away mid-send; the socket's own handler cleans up.
        pass
