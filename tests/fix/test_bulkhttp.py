"""The download transport against servers that answer byte for byte as scripted (RFC 9112 framing)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from pistachio_tui.fix import bulkhttp
from pistachio_tui.fix.bulkhttp import BulkTransport
from pistachio_tui.fix.downloads import DownloadError, download

TLS = Path(__file__).resolve().parent.parent / "fixtures" / "tls"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def answering(*parts: bytes, then_wait: float = 0.0, heads: list[bytes] | None = None) -> Handler:
    """A handler that records the request head, writes ``parts`` one by one and closes."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await read_head(reader)
            if heads is not None:
                heads.append(head)
            for part in parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(0.01)
            await asyncio.sleep(then_wait)
        finally:
            writer.close()
    return handle


async def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    return server, f"{'https' if tls else 'http'}://127.0.0.1:{port}/models/a.safetensors?x=1"


def client(timeout: float = 5.0, tls: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=BulkTransport(tls or ssl.create_default_context()), timeout=timeout)


async def fetch(url: str, **kwargs) -> tuple[httpx.Response, bytes]:
    async with client(**kwargs) as http, http.stream("GET", url, headers={"Range": "bytes=5-"}) as response:
        return response, b"".join([chunk async for chunk in response.aiter_bytes()])


async def test_a_sized_body_and_the_request_it_answers():
    heads: list[bytes] = []
    server, url = await serve(answering(b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n"
                                        b"Content-Range: bytes 5-14/15\r\n\r\n01234", b"56789", b"extra after the body",
                                        heads=heads))
    async with server:
        response, body = await fetch(url)
    assert (response.status_code, response.headers["content-range"], body) == (206, "bytes 5-14/15", b"0123456789")
    request_line, *fields = heads[0].decode().split("\r\n")
    assert request_line == "GET /models/a.safetensors?x=1 HTTP/1.1"
    assert "Range: bytes=5-" in fields and "Connection: close" in fields
    assert f"Host: {url.split('/')[2]}" in fields


async def test_a_chunked_body_with_extensions_and_trailers():
    server, url = await serve(answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhel",
                                        b"lo\r\n", b"6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"))
    async with server:
        _, body = await fetch(url)
    assert body == b"hello world"


async def test_an_interim_answer_is_skipped():
    server, url = await serve(answering(b"HTTP/1.1 100 Continue\r\n\r\n",
                                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    async with server:
        response, body = await fetch(url)
    assert (response.status_code, body) == (200, b"ok")


async def test_a_body_without_length_runs_until_the_server_closes():
    server, url = await serve(answering(b"HTTP/1.1 200 OK\r\n\r\nall ", b"of it"))
    async with server:
        _, body = await fetch(url)
    assert body == b"all of it"


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
    b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-",
], ids=["cut-sized", "cut-chunked", "bad-chunk-size", "two-lengths", "not-http", "bad-header", "cut-head"])
async def test_broken_answers_are_protocol_errors(answer):
    server, url = await serve(answering(answer))
    async with server:
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(url)


async def test_a_silent_server_is_a_read_timeout():
    server, url = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhalf", then_wait=2))
    async with server:
        with pytest.raises(httpx.ReadTimeout):
            await fetch(url, timeout=0.2)


async def test_nobody_listening_is_a_connect_error():
    server, url = await serve(answering())
    server.close()
    await server.wait_closed()
    with pytest.raises(httpx.ConnectError):
        await fetch(url)


async def test_https_with_the_given_trust():
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(TLS / "loopback-cert.pem", TLS / "loopback-key.pem")
    server, url = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret"), tls=served)
    async with server:
        _, body = await fetch(url, tls=ssl.create_default_context(cafile=str(TLS / "loopback-cert.pem")))
        assert body == b"secret"
        with pytest.raises(httpx.ConnectError):  # a certificate the client does not trust
            await fetch(url)


async def test_a_slow_reader_holds_back_the_socket(monkeypatch):
    """Memory stays bounded: past ``PAUSE_ABOVE`` queued bytes the connection is not read."""
    monkeypatch.setattr(bulkhttp, "PAUSE_ABOVE", 256 * 1024)
    monkeypatch.setattr(bulkhttp, "RESUME_BELOW", 64 * 1024)
    receivers: list[bulkhttp._Receiver] = []

    class Recording(bulkhttp._Receiver):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            receivers.append(self)
            super().connection_made(transport)

    monkeypatch.setattr(bulkhttp, "_Receiver", Recording)
    size = 32 * 1024 * 1024
    server, url = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size,
                                        *[b"x" * (1024 * 1024)] * 32))
    async with server, client() as http, http.stream("GET", url) as response:
        chunks = response.aiter_raw()
        got = len(await anext(chunks))
        await asyncio.sleep(0.3)  # the server would have sent it all by now, were the socket read
        queued = receivers[0].queued
        async for chunk in chunks:
            got += len(chunk)
    # Paused once over the limit: at most one socket read beyond it.
    assert queued <= 256 * 1024 + 256 * 1024 and got == size


async def test_downloads_go_over_it_unless_a_proxy_is_set(monkeypatch, tmp_path):
    """httpx follows proxy settings only with its own transport, so a named proxy keeps that one."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    requests: list[str] = []
    real = BulkTransport.handle_async_request

    async def counted(self, request):
        requests.append(str(request.url))
        return await real(self, request)

    monkeypatch.setattr(BulkTransport, "handle_async_request", counted)
    server, url = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    async with server:
        assert (await download(url, tmp_path / "a.bin")).read_bytes() == b"ok"
        assert requests == [url]
        nobody, proxy = await serve(answering())
        nobody.close()
        await nobody.wait_closed()
        monkeypatch.setenv("HTTP_PROXY", proxy.split("/models")[0])
        with pytest.raises(DownloadError, match="Cannot reach"):
            await download(url, tmp_path / "b.bin", retries=0)
    assert requests == [url]
