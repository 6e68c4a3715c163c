"""The HF token, proxy headers and URL passwords never show: not in reprs, exception messages,
CLI output (human or --json) or fix events, even when a server echoes them back."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from aiohttp import web

from pistachio_tui.cli import main
from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import ComfyError
from pistachio_tui.config import ServerConfig, Settings, save_settings, scrub_secrets
from pistachio_tui.fix.downloads import DownloadError, download
from pistachio_tui.fix.flow import FixOptions
from pistachio_tui.fix.manager import ManagerClient, ManagerError, dialect_for
from pistachio_tui.sim.server import SimServer
from tests.fix.file_server import FileServer
from tests.fix.workflows import CHECKPOINT_ONLY_NODES, fix_workflow
from tests.loopback import serve_on_loopback

HF_TOKEN = "hf_TOKEN-SECRET-1234"
PROXY_AUTH = "Bearer PROXY-SECRET-5678"
PASSWORD = "PW-SECRET-9012"


def _leaks(*texts: str) -> list[str]:
    return [t for t in texts if "SECRET" in t]


async def _echoing_server(status: int) -> tuple[web.AppRunner, str]:
    """Answers every request with ``status`` and the request's headers in the body, like a chatty proxy."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=status, text="\n".join(f"{k}: {v}" for k, v in request.headers.items()))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return await serve_on_loopback(app)


def test_fix_options_repr_hides_the_token():
    assert _leaks(repr(FixOptions(hf_token=HF_TOKEN))) == []


async def test_download_errors_never_carry_token_or_password(tmp_path):
    def gated(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text=f"you sent {request.headers.get('authorization')}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(gated)) as http:
        with pytest.raises(DownloadError) as gate:
            await download("https://huggingface.co/org/repo/resolve/main/m.safetensors", tmp_path / "m.safetensors",
                           token=HF_TOKEN, client=http)
    files = FileServer(files={})
    await files.start()
    try:
        with pytest.raises(DownloadError) as missing:
            await download(files.url.replace("://", f"://me:{PASSWORD}@") + "/m.safetensors?sig=SECRET-SIG",
                           tmp_path / "n.safetensors", token=HF_TOKEN)
    finally:
        await files.stop()
    with pytest.raises(DownloadError) as unreachable:
        await download(f"http://me:{PASSWORD}@127.0.0.1:9/m.safetensors", tmp_path / "o.safetensors",
                       token=HF_TOKEN, timeout=2)
    errors = [gate.value, missing.value, unreachable.value]
    assert _leaks(*(str(e) for e in errors), *(repr(e) for e in errors)) == []
    assert "huggingface.co/org/repo" in str(gate.value) and "404" in str(missing.value)


def _settings_with_proxy(url: str) -> None:
    save_settings(Settings(servers=[ServerConfig("pod", url, {"Authorization": PROXY_AUTH})]))


@pytest.mark.parametrize("json_output", [False, True])
async def test_fix_cli_against_a_proxy_that_refuses_and_echoes(tmp_path, capsys, monkeypatch, json_output):
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    runner, url = await _echoing_server(401)
    _settings_with_proxy(url)
    workflow = tmp_path / "w.json"
    workflow.write_text(json.dumps({"1": {"class_type": "SaveImage", "inputs": {}}}))
    try:
        code = await asyncio.to_thread(main, ["fix", str(workflow), "--server", "pod", "--no-hf",
                                              *(["--json"] if json_output else [])])
    finally:
        await runner.cleanup()
    out = capsys.readouterr()
    assert code != 0 and "401" in out.out + out.err
    assert _leaks(out.out, out.err) == []


async def test_fix_cli_with_token_and_a_download_refused(tmp_path, capsys, monkeypatch):
    """A whole fix run, with the token set and a model host that refuses and echoes the request."""
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    files = FileServer(files={"fixflow_ckpt.safetensors": b"x" * 1000}, token="other")
    await files.start()
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    sim = SimServer(step_delay=0.001, models_dir=comfy / "models")
    await sim.start()
    _settings_with_proxy(sim.url)
    workflow = tmp_path / "w.json"
    workflow.write_text(json.dumps(fix_workflow(files.url, CHECKPOINT_ONLY_NODES, [("fixflow_ckpt.safetensors",
                                                                                     "checkpoints")])))
    try:
        for extra in ([], ["--json"]):
            code = await asyncio.to_thread(main, ["fix", str(workflow), "--server", "pod", "--comfy-dir", str(comfy),
                                                  "--yes", "--no-hf", *extra])
            out = capsys.readouterr()
            assert code == 2 and "HTTP 401" in out.out
            assert _leaks(out.out, out.err) == []
    finally:
        await sim.stop()
        await files.stop()


async def test_comfy_client_errors_hide_proxy_credentials():
    runner, url = await _echoing_server(500)
    seen = []
    try:
        for base in (url, url.replace("://", f"://me:{PASSWORD}@")):
            async with ComfyClient(base, headers={"Authorization": PROXY_AUTH}) as client:
                seen.append(repr(client))
                with pytest.raises(ComfyError) as info:
                    await client.system_stats()
                seen += [str(info.value), repr(info.value), info.value.message]
    finally:
        await runner.cleanup()
    assert _leaks(*seen) == []


async def test_manager_refusal_quotes_the_server_without_the_proxy_header():
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"bad task; you sent authorization={request.headers['authorization']}")

    client = ComfyClient("http://comfy.test", headers={"Authorization": PROXY_AUTH},
                         transport=httpx.MockTransport(refuse))
    async with client:
        with pytest.raises(ManagerError) as info:
            await ManagerClient(client, dialect=dialect_for("V4.0.4", v2=True)).queue_install_model(name="m", type="lora", url="http://x/m", filename="m")
    assert "bad task" in info.value.message and "[hidden]" in info.value.message
    assert _leaks(str(info.value), repr(info.value)) == []


def test_scrub_secrets_hides_whole_values_and_bare_credentials():
    text = f"Authorization: {PROXY_AUTH}; token={PROXY_AUTH.split()[1]}; flag=1"
    assert scrub_secrets(text, [PROXY_AUTH, "1"]) == "Authorization: [hidden]; token=[hidden]; flag=1"
