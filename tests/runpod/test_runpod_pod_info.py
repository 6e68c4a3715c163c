"""Derived pod info: uptime, spend, URLs, SSH, "this pod", the ComfyUI probe."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from pistachio_tui.runpod.models import Pod
from pistachio_tui.runpod.pods import (
    LOCAL_COMFY_URL,
    ComfyFound,
    comfy_ports,
    comfy_proxy_url,
    comfy_server,
    comfy_url,
    current_pod_id,
    default_comfy_url,
    find_comfy,
    probe_comfy,
    short_gpu_name,
    sort_pods,
    spend_estimate,
    ssh_command,
    summarize,
)
from tests.loopback import serve_on_loopback
from pistachio_tui.sim.runpod import make_pod


def pod(*args, **kwargs) -> Pod:
    return Pod.from_wire(make_pod(*args, **kwargs))


def test_spend_is_cost_times_uptime():
    p = pod("p1", "a", cost_per_hr=0.69, uptime=7200)
    assert spend_estimate(p) == pytest.approx(1.38)
    assert spend_estimate(pod("p2", "b", running=False)) == 0.0


def test_comfy_urls():
    assert comfy_proxy_url("abc123") == "https://abc123-8188.proxy.runpod.net"
    p = pod("abc123", "a")
    assert comfy_url(p) == "https://abc123-8188.proxy.runpod.net"
    assert comfy_url(p, this_pod_id="abc123") == LOCAL_COMFY_URL == "http://127.0.0.1:8188"
    assert comfy_url(p, this_pod_id="other") == "https://abc123-8188.proxy.runpod.net"


def test_ssh_direct_when_port_22_is_public_else_proxy():
    assert ssh_command(pod("p1", "a", ssh_port=41234)) == "ssh root@203.0.113.7 -p 41234 -i ~/.ssh/id_ed25519"
    assert ssh_command(pod("p1", "a", public_ip=None)) == "ssh p1-64410b1f@ssh.runpod.io -i ~/.ssh/id_ed25519"
    assert ssh_command(pod("p1", "a"), key_path="~/.ssh/rp") .endswith("-i ~/.ssh/rp")
    assert ssh_command(pod("p1", "a", running=False)) is None


def test_this_pod_from_env(monkeypatch):
    assert current_pod_id() is None and default_comfy_url() is None
    monkeypatch.setenv("RUNPOD_POD_ID", "def456uvw")
    assert current_pod_id() == "def456uvw"
    assert default_comfy_url() == "http://127.0.0.1:8188"
    assert current_pod_id({"RUNPOD_POD_ID": "  "}) is None


def test_sort_this_pod_first_then_running_then_name():
    pods = [pod("s", "zeta", running=False), pod("r2", "beta"), pod("r1", "Alpha"), pod("me", "omega", running=False)]
    assert [p.id for p in sort_pods(pods, this_pod_id="me")] == ["me", "r1", "r2", "s"]
    assert [p.id for p in sort_pods(pods)] == ["r1", "r2", "me", "s"]


def test_summary_rows():
    rows = summarize([pod("a1", "busy", gpu_util=90, memory_util=50, uptime=60, gpu_count=2),
                      pod("b2", "off", running=False)], this_pod_id="a1")
    busy, off = rows
    assert busy.is_this_pod and busy.comfy_url == LOCAL_COMFY_URL
    assert (busy.gpu_util_percent, busy.gpu_memory_percent, busy.uptime, busy.gpu_count) == (90, 50, "1m 00s", 2)
    assert off.uptime == "—" and off.gpu_util_percent is None and off.ssh is None
    assert off.to_json()["status"] == "stopped"
    server = comfy_server(rows[1])
    assert (server.name, server.url) == ("off (RunPod)", "https://b2-8188.proxy.runpod.net")


def test_short_gpu_name():
    assert short_gpu_name("NVIDIA GeForce RTX 4090") == "RTX 4090"
    assert short_gpu_name("NVIDIA H100 80GB HBM3") == "H100 80GB HBM3"
    assert short_gpu_name("AMD Instinct MI300X") == "AMD Instinct MI300X"


def test_pod_status_words():
    starting = Pod.from_wire({**make_pod("p", "n"), "runtime": None})
    assert starting.status == "starting" and starting.is_running
    assert Pod.from_wire({**make_pod("p", "n"), "desiredStatus": "TERMINATED"}).status == "terminated"


def _client(handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_probe_comfy_up(fixture_json):
    stats = fixture_json("system_stats")["body"]
    seen = []

    def handler(request):
        seen.append(str(request.url))
        return httpx.Response(200, json=stats)

    async with _client(handler) as client:
        assert await probe_comfy("https://p1-8188.proxy.runpod.net/", client) is True
    assert seen == ["https://p1-8188.proxy.runpod.net/system_stats"]


@pytest.mark.parametrize(("response", "reason"), [
    (httpx.Response(502, text="bad gateway"), "not listening yet"),
    (httpx.Response(401), "authentication"),
    (httpx.Response(404), "HTTP 404"),
    (httpx.Response(200, text="<html>"), "not with ComfyUI's JSON"),
    (httpx.Response(200, json={"hello": 1}), "not like ComfyUI"),
])
async def test_probe_comfy_reasons(response, reason):
    async with _client(lambda request: response) as client:
        result = await probe_comfy("http://x:8188", client)
    assert isinstance(result, str) and reason in result


async def test_probe_comfy_over_real_http(fixture_json):
    app = web.Application()
    async def system_stats(request):
        return web.json_response(fixture_json("system_stats")["body"])

    app.router.add_get("/system_stats", system_stats)
    runner, url = await serve_on_loopback(app)
    try:
        async with httpx.AsyncClient() as client:
            assert await probe_comfy(url, client) is True
    finally:
        await runner.cleanup()


async def test_probe_comfy_transport_failures():
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request):
        raise httpx.ConnectError("refused", request=request)

    async with _client(timeout) as client:
        assert await probe_comfy("http://x:8188", client, timeout=0.5) == "no answer within 0.5 s"
    async with _client(refused) as client:
        assert await probe_comfy("http://x:8188", client) == "cannot connect (ConnectError)"


def test_comfy_ports_come_from_the_pod_8188_first():
    wire = make_pod("p1", "a")
    wire["ports"] = "3000/http,22/tcp,8188/http,8888/http"
    assert comfy_ports(Pod.from_wire(wire)) == [8188, 3000, 8888]
    wire.update(ports="", runtime=None)
    assert comfy_ports(Pod.from_wire(wire)) == [8188]


async def test_find_comfy_probes_each_port_until_comfyui_answers(fixture_json):
    stats = fixture_json("system_stats")["body"]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "p1-3000.proxy.runpod.net":
            return httpx.Response(200, json=stats)
        return httpx.Response(502, text="bad gateway")

    wire = make_pod("p1", "a")
    wire["ports"] = "8188/http,3000/http"
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        found = await find_comfy(Pod.from_wire(wire), client)
        assert found == ComfyFound("https://p1-3000.proxy.runpod.net")
        wire["ports"] = "8188/http"
        missing = await find_comfy(Pod.from_wire(wire), client)
        assert missing.url is None and missing.not_up_yet and "port 8188: HTTP 502" in missing.reason
        wire["runtime"] = None
        starting = await find_comfy(Pod.from_wire(wire), client)
        assert starting.not_up_yet and "container is not up yet" in starting.reason


def test_the_proxy_address_can_be_pointed_elsewhere(monkeypatch):
    assert comfy_proxy_url("abc", 8188) == "https://abc-8188.proxy.runpod.net"
    monkeypatch.setenv("RUNPOD_PROXY_URL", "http://127.0.0.1:9/proxy/{pod_id}-{port}")
    assert comfy_proxy_url("abc", 3000) == "http://127.0.0.1:9/proxy/abc-3000"
    monkeypatch.setenv("RUNPOD_PROXY_URL", "  ")
    assert comfy_proxy_url("abc") == "https://abc-8188.proxy.runpod.net"
