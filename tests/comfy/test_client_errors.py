"""Network failures and odd statuses become typed errors a person can act on."""

from __future__ import annotations

import socket

import httpx
import pytest
import respx

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import AuthRequired, BadResponse, ServerError, ServerUnreachable
from tests.comfy.recorded import BASE, replay


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connection_refused_says_what_to_check():
    url = f"http://127.0.0.1:{free_port()}"
    async with ComfyClient(url, timeout=2) as client:
        with pytest.raises(ServerUnreachable) as caught:
            await client.system_stats()
    assert caught.value.message == (
        f"Cannot reach ComfyUI at {url} — is it running and listening on that port? (connection refused)")


@pytest.mark.parametrize(("exc", "expected"), [
    (httpx.ConnectTimeout("timed out"), "did not answer within 10 s"),
    (httpx.ReadTimeout("timed out"), "(timeout)"),
    (httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number"), "TLS error"),
    (httpx.ConnectError("[Errno -2] Name or service not known"), "Cannot resolve host 'comfy.test'"),
    (httpx.RemoteProtocolError("Server disconnected"), "did it crash or restart?"),
])
async def test_transport_failures(exc, expected):
    with respx.mock() as router:
        router.get(BASE + "/queue").mock(side_effect=exc)
        async with ComfyClient(BASE) as client:
            with pytest.raises(ServerUnreachable) as caught:
                await client.queue()
    assert expected in caught.value.message


async def test_url_without_http_scheme():
    async with ComfyClient("ftp://box:8188") as client:
        with pytest.raises(ServerUnreachable, match="must start with http:// or https://"):
            await client.queue()


@pytest.mark.parametrize("status", [401, 403])
async def test_proxy_auth(status):
    with respx.mock() as router:
        router.get(BASE + "/system_stats").mock(return_value=httpx.Response(status, text="Unauthorized"))
        async with ComfyClient(BASE) as client:
            with pytest.raises(AuthRequired) as caught:
                await client.system_stats()
    assert caught.value.message == (
        f"ComfyUI at {BASE} answered {status}: this proxy needs an auth header; "
        "add one with the server's `headers` setting")


async def test_headers_are_sent_on_every_request():
    with respx.mock() as router:
        route = replay(router, "GET", "/queue", "queue_idle")
        async with ComfyClient(BASE, headers={"Authorization": "Bearer t"}) as client:
            await client.queue()
    assert route.calls.last.request.headers["authorization"] == "Bearer t"


async def test_view_traversal_is_refused_clearly():
    with respx.mock() as router:
        replay(router, "GET", "/view", "view_traversal")
        async with ComfyClient(BASE) as client:
            with pytest.raises(ServerError) as caught:
                await client.view("../../etc/passwd")
    assert caught.value.status == 400
    assert "refused to serve '../../etc/passwd'" in caught.value.message
    assert "without '..'" in caught.value.message


async def test_view_missing_file():
    with respx.mock() as router:
        router.get(BASE + "/view").mock(return_value=httpx.Response(404))
        async with ComfyClient(BASE) as client:
            with pytest.raises(ServerError, match="has no file output/sub/x.png"):
                await client.view("x.png", "sub")


async def test_garbage_instead_of_json():
    with respx.mock() as router:
        router.get(BASE + "/queue").mock(return_value=httpx.Response(200, text="<html>login</html>"))
        async with ComfyClient(BASE) as client:
            with pytest.raises(BadResponse, match="is the URL really a ComfyUI server"):
                await client.queue()


async def test_wrong_shape_is_bad_response():
    with respx.mock() as router:
        router.get(BASE + "/system_stats").mock(return_value=httpx.Response(200, json={"nope": 1}))
        async with ComfyClient(BASE) as client:
            with pytest.raises(BadResponse, match="unexpected /system_stats answer"):
                await client.system_stats()


async def test_unexpected_status_is_server_error():
    with respx.mock() as router:
        router.get(BASE + "/models/nothere").mock(return_value=httpx.Response(404, text="404: Not Found"))
        async with ComfyClient(BASE) as client:
            with pytest.raises(ServerError) as caught:
                await client.models("nothere")
    assert caught.value.status == 404 and "answered 404 to GET /models/nothere" in caught.value.message


async def test_server_error_keeps_status_and_body():
    with respx.mock() as router:
        router.get(BASE + "/queue").mock(return_value=httpx.Response(502, text="Bad Gateway"))
        async with ComfyClient(BASE) as client:
            with pytest.raises(ServerError) as caught:
                await client.queue()
    assert (caught.value.status, caught.value.body) == (502, "Bad Gateway")
    assert "see the server log" in caught.value.message
