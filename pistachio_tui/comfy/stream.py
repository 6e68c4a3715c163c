"""A ComfyUI websocket that survives disconnects.

``EventStream`` yields events forever: when the socket drops it yields
``Disconnected``, reconnects with exponential backoff, and after every
reconnect yields ``Resynced`` with the queue and recent history fetched over
REST, so a prompt that finished while the socket was down is not missed.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import ComfyError
from pistachio_tui.comfy.events import CLIENT_FEATURES, Connected, Disconnected, Event, Resynced, parse_message

#: Largest frame accepted; previews are small, a huge frame means something is wrong.
MAX_FRAME = 64 * 1024 * 1024
#: The longest the stream reads frames back to back before it gives the loop away.
_READ_SLICE_S = 0.005
#: The longest it then gives the loop away for, when other tasks keep it busy.
_GIVE_WAY_S = 0.005
#: A loop turn that comes back sooner than this ran nothing but the stream: an idle loop.
_IDLE_TURN_S = 30e-6


async def _give_way() -> None:
    """Let other tasks run until a loop turn finds nothing else to do, or ``_GIVE_WAY_S`` passed.

    One turn (``sleep(0)``) is not enough: the UI's work spans several turns (a key press, its
    action, the redraw), and each would wait a whole slice behind the stream. A fixed pause
    (``sleep(0.005)``) is enough, but leaves the loop idle when nothing else wants it; a backlog
    is read at half speed, and every pause costs a wake-up from idle.
    """
    clock = time.monotonic
    deadline = clock() + _GIVE_WAY_S
    while True:
        before = clock()
        await asyncio.sleep(0)
        after = clock()
        if after - before < _IDLE_TURN_S or after >= deadline:
            return


#: Seconds to wait for the server's side of the websocket close handshake.
CLOSE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: ``initial * factor**attempt`` capped at ``cap``, spread by ±``jitter``."""

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 10.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt number ``attempt`` (0-based)."""
        base = min(self.cap, self.initial * self.factor ** min(attempt, 32))
        # Jitter keeps many clients from hammering a restarted server in lockstep.
        return min(self.cap, base * (1 + self.jitter * (2 * random.random() - 1)))


class EventStream:
    """Events of one server's websocket, forever, across disconnects.

    ``async for event in stream`` yields ``Connected`` after each (re)connect,
    then, after a reconnect, ``Resynced``; ``Disconnected`` whenever the socket
    drops or cannot open. ``await stream.close()`` ends the iteration.
    Iterate a stream once; ``backoff`` is injectable so tests reconnect fast.
    """

    def __init__(self, client: ComfyClient, *, backoff: Backoff | None = None, resync_items: int = 64,
                 open_timeout: float = 10.0, ping_interval: float | None = 20.0) -> None:
        self.client = client
        self.backoff = backoff or Backoff()
        self.resync_items = resync_items
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self._closing = asyncio.Event()
        #: Ends the wait between reconnect attempts (set by ``close`` and ``retry_now``).
        self._wake = asyncio.Event()
        self._ws: ClientConnection | None = None

    def __aiter__(self) -> AsyncGenerator[Event, None]:
        return self._events()

    async def close(self) -> None:
        """Stop: the current iteration ends after the socket closes."""
        self._closing.set()
        self._wake.set()
        if self._ws is not None:
            await self._ws.close()

    def retry_now(self) -> None:
        """Skip the rest of the current reconnect delay, e.g. once HTTP answers again."""
        self._wake.set()

    async def _open(self) -> ClientConnection:
        return await connect(
            self.client.ws_url(),
            additional_headers=self.client.headers,
            open_timeout=self.open_timeout,
            ping_interval=self.ping_interval,
            # The close handshake is a courtesy: a server that never answers it must not hold
            # a command past its own deadline (the default waits 10 s).
            close_timeout=CLOSE_TIMEOUT,
            max_size=MAX_FRAME,
            # ComfyUI (aiohttp) deflates every frame when the client offers it: JPEG previews for no
            # gain, and a flood of small progress frames packs ~10,000 into one 256 KiB read, which
            # the library inflates and parses in one loop callback (150-200 ms under a flood).
            compression=None,
        )

    async def _resync(self) -> Resynced:
        queue, finished = await asyncio.gather(self.client.queue(),
                                               self.client.history(max_items=self.resync_items))
        return Resynced(queue, finished)

    async def _events(self) -> AsyncGenerator[Event, None]:
        attempt = 0
        reconnecting = False
        while not self._closing.is_set():
            try:
                ws = await self._open()
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                reason = self._reason(exc)
            else:
                self._ws = ws
                try:
                    # ComfyUI reads feature flags only from the first message a client sends.
                    await ws.send(json.dumps({"type": "feature_flags", "data": CLIENT_FEATURES}))
                    first = parse_message(await asyncio.wait_for(ws.recv(), self.open_timeout))
                    attempt = 0
                    yield Connected(getattr(first, "sid", None) or self.client.client_id)
                    if reconnecting:
                        yield await self._resync()
                    yield first
                    # Read here with ``recv``, not through a generator of our own nor the socket's
                    # (``async for``): every frame would pass two or three of them.
                    # A frame already buffered comes back without giving the loop away, so a server
                    # sending faster than we read would starve the UI: after a slice of frames read
                    # back to back the stream gives way to whatever else wants the loop.
                    # The loop's own clock is a Python method around this one, read twice a frame.
                    clock = time.monotonic
                    recv = ws.recv
                    started = asked = clock()
                    while True:
                        raw = await recv()
                        now = clock()
                        if now - asked >= _READ_SLICE_S:
                            # Waited for this frame as long as a slice: everything else had its turn.
                            started = now
                        elif now - started >= _READ_SLICE_S:
                            await _give_way()
                            started = clock()
                        yield parse_message(raw)
                        asked = clock()
                except ConnectionClosedOK:
                    reason = "the server closed the connection"
                except ConnectionClosed as exc:
                    reason = f"lost the websocket to ComfyUI at {self.client.shown_url} ({self.client.scrub(str(exc))})"
                except TimeoutError:
                    reason = f"ComfyUI at {self.client.shown_url} sent nothing after the websocket opened (timeout)"
                except ComfyError as exc:
                    reason = exc.message
                finally:
                    self._ws = None
                    await ws.close()
            if self._closing.is_set():
                return
            retry_in = self.backoff.delay(attempt)
            attempt += 1
            reconnecting = True
            # Cleared before the yield so a retry_now() from the consumer is not lost.
            self._wake.clear()
            yield Disconnected(reason, retry_in)
            try:
                await asyncio.wait_for(self._wake.wait(), retry_in)
            except TimeoutError:
                pass

    def _reason(self, exc: BaseException) -> str:
        url = self.client.shown_url
        if isinstance(exc, InvalidStatus):
            status = exc.response.status_code
            if status in (401, 403):
                return (f"ComfyUI at {url} answered {status}: this proxy needs an auth header; "
                        "add one with the server's `headers` setting")
            return f"ComfyUI at {url} refused the websocket ({status}) — is this a ComfyUI server?"
        if isinstance(exc, ConnectionRefusedError):
            return f"Cannot reach ComfyUI at {url} — is it running and listening on that port? (connection refused)"
        if isinstance(exc, TimeoutError):
            return f"ComfyUI at {url} did not accept the websocket within {self.open_timeout:g} s (timeout)"
        return f"Cannot open the websocket of ComfyUI at {url} ({type(exc).__name__}: {self.client.scrub(str(exc))})"
