"""An httpx transport for model downloads: HTTP/1.1, one request per connection, bodies without copies.

httpx's own HTTP/1.1 stack (httpcore over h11) copies every received byte into
its parser's buffer, twice out of it and once more into ``bytes``, with several
layers of Python per read: for a 200 MB file about 0.2 s of CPU, as much as
``curl`` spends on the whole download. A download needs none of what that
buys (keep-alive, pipelining of many small answers): here each request opens
its own connection, the head is parsed once, and the body is handed on as the
very ``bytes`` objects the socket reads returned.

Everything else stays httpx's: the client builds the request (``Host``,
``User-Agent``), proxies from the environment get httpx's own transports, and
the answer is an ordinary ``httpx.Response``, so redirects, credentials and
every check of ``fix.downloads`` are unchanged. Failures raise the httpx
exceptions httpcore would (``ConnectError``, ``ConnectTimeout``,
``ReadTimeout``, ``ReadError``, ``RemoteProtocolError``), as RFC 9112 frames a
body: ``Transfer-Encoding: chunked``, else ``Content-Length``, else until the
server closes.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator

import httpx

#: Received bytes held for a slow reader before the socket is no longer read (per connection).
PAUSE_ABOVE = 2 * 1024 * 1024
RESUME_BELOW = 512 * 1024
#: Largest response head accepted (status line and headers).
MAX_HEAD = 64 * 1024
_NO_BODY_STATUS = (204, 304)


class _Receiver(asyncio.Protocol):
    """Queues what the socket delivers; the reader takes it with :meth:`next`."""

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.queued = 0
        self.closed = False
        self.error: Exception | None = None
        self.transport: asyncio.Transport | None = None
        self._paused = False
        self._arrived: asyncio.Event = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.queued += len(data)
        self._arrived.set()
        if self.queued > PAUSE_ABOVE and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.closed = True
        self._arrived.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._arrived.set()

    async def next(self, timeout: float | None, request: httpx.Request) -> bytes | None:
        """The next bytes received, or None once the server closed the connection."""
        while not self.chunks:
            if self.closed:
                if self.error is not None:
                    raise httpx.ReadError(str(self.error) or type(self.error).__name__, request=request)
                return None
            self._arrived.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._arrived.wait()
            except TimeoutError:
                raise httpx.ReadTimeout(f"no data for {timeout} s", request=request) from None
        data = self.chunks.popleft()
        self.queued -= len(data)
        if self._paused and self.queued < RESUME_BELOW and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def push_back(self, data: bytes) -> None:
        if data:
            self.chunks.appendleft(data)
            self.queued += len(data)


class _Body(httpx.AsyncByteStream):
    """The body of one answer, framed as its head says; closing it closes the connection."""

    def __init__(self, receiver: _Receiver, request: httpx.Request, timeout: float | None,
                 length: int | None, chunked: bool) -> None:
        self._receiver, self._request, self._timeout = receiver, request, timeout
        self._length, self._chunked = length, chunked

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self._chunked:
                async for data in self._chunks():
                    yield data
            else:
                async for data in self._sized():
                    yield data
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._receiver.transport is not None:
            self._receiver.transport.close()

    async def _read(self) -> bytes | None:
        return await self._receiver.next(self._timeout, self._request)

    def _cut(self, message: str) -> httpx.RemoteProtocolError:
        return httpx.RemoteProtocolError(message, request=self._request)

    async def _sized(self) -> AsyncIterator[bytes]:
        left = self._length
        while left is None or left > 0:
            data = await self._read()
            if data is None:
                if left is None:
                    return
                raise self._cut("peer closed connection without sending complete message body "
                                f"({left} bytes missing)")
            if left is not None:
                if len(data) > left:
                    data = data[:left]
                left -= len(data)
            yield data

    async def _line(self, buffer: bytearray) -> bytes:
        """One CRLF-terminated line of the chunked framing (without the CRLF)."""
        while (end := buffer.find(b"\r\n")) < 0:
            if len(buffer) > MAX_HEAD:
                raise self._cut("chunk size line too long")
            data = await self._read()
            if data is None:
                raise self._cut("peer closed connection inside the chunked body")
            buffer += data
        line = bytes(buffer[:end])
        del buffer[:end + 2]
        return line

    async def _chunks(self) -> AsyncIterator[bytes]:
        buffer = bytearray()
        while True:
            size_text = (await self._line(buffer)).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise self._cut(f"bad chunk size {size_text[:20]!r}") from None
            if size < 0:
                raise self._cut(f"bad chunk size {size_text[:20]!r}")
            if size == 0:
                while await self._line(buffer):  # trailer fields, up to the empty line
                    pass
                return
            while size:
                if buffer:
                    data = bytes(buffer[:size])
                    del buffer[:len(data)]
                else:
                    received = await self._read()
                    if received is None:
                        raise self._cut("peer closed connection inside the chunked body")
                    data = received[:size]
                    buffer += received[len(data):]
                size -= len(data)
                yield data
            if await self._line(buffer):
                raise self._cut("chunk data not followed by CRLF")


class BulkTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for large downloads; see the module docstring. ``ssl_context`` serves https."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl = ssl_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"cannot download from a {url.scheme!r} URL", request=request)
        timeouts = request.extensions.get("timeout", {})
        receiver = await self._connect(request, timeouts.get("connect"))
        assert receiver.transport is not None
        try:
            receiver.transport.write(self._head(request) + await request.aread())
            status, reason, headers = await self._answer_head(receiver, request, timeouts.get("read"))
        except BaseException:
            receiver.transport.close()
            raise
        length, chunked = self._framing(request, status, headers)
        body = _Body(receiver, request, timeouts.get("read"), length, chunked)
        return httpx.Response(status, headers=headers, stream=body,
                              extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason})

    async def _connect(self, request: httpx.Request, timeout: float | None) -> _Receiver:
        url = request.url
        secure = url.scheme == "https"
        host = url.raw_host.decode("ascii")  # an international name in its IDNA form, for DNS and SNI
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, receiver = await loop.create_connection(
                    _Receiver, host, url.port or (443 if secure else 80),
                    ssl=self._ssl if secure else None, server_hostname=host if secure else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection within {timeout} s", request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from None
        return receiver

    @staticmethod
    def _head(request: httpx.Request) -> bytes:
        lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
        for name, value in request.headers.raw:
            if name.lower() != b"connection":
                lines.append(name + b": " + value)
        lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n"

    @staticmethod
    async def _answer_head(receiver: _Receiver, request: httpx.Request,
                           timeout: float | None) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        buffer = b""
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise httpx.RemoteProtocolError("response head too long", request=request)
                data = await receiver.next(timeout, request)
                if data is None:
                    raise httpx.RemoteProtocolError("server disconnected without sending a response",
                                                    request=request)
                buffer += data
                continue
            receiver.push_back(buffer[end + 4:])
            status_line, *header_lines = buffer[:end].split(b"\r\n")
            version, _, rest = status_line.partition(b" ")
            code, _, reason = rest.partition(b" ")
            if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
                raise httpx.RemoteProtocolError(f"not an HTTP/1.1 answer: {status_line[:40]!r}", request=request)
            headers = []
            for line in header_lines:
                name, colon, value = line.partition(b":")
                if not colon or not name or name != name.strip():
                    raise httpx.RemoteProtocolError(f"malformed header line {line[:40]!r}", request=request)
                headers.append((name, value.strip()))
            if 100 <= int(code) < 200:  # an interim answer (100 Continue): the real one follows
                buffer = b""
                continue
            return int(code), reason, headers

    @staticmethod
    def _framing(request: httpx.Request, status: int,
                 headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool]:
        """(Content-Length or None, chunked) as RFC 9112 section 6.3 decides."""
        if request.method == "HEAD" or status in _NO_BODY_STATUS:
            return 0, False
        fields = httpx.Headers(headers)
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return None, True
        lengths = {v.strip() for v in fields.get_list("content-length", split_commas=True)}
        if not lengths:
            return None, False
        length = lengths.pop()
        if lengths or not (length.isascii() and length.isdigit()):
            raise httpx.RemoteProtocolError("invalid Content-Length", request=request)
        return int(length), False
