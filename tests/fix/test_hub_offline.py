"""Offline, the model search says so once, after one short attempt."""

from __future__ import annotations

import time

import httpx

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.fix.flow import FixFlow, FixOptions
from pistachio_tui.fix.models_search import hf_file_url, hub_unreachable
from pistachio_tui.sim.server import SimServer
from tests.fix.test_fix_flow import _api_workflow


async def test_probe_names_the_hub_and_what_to_do():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route", request=request)

    message = await hub_unreachable(transport=httpx.MockTransport(refuse))
    assert message is not None and "huggingface.co" in message and "ConnectError" in message
    assert "paste a direct download URL" in message and "HF_ENDPOINT" in message
    assert await hub_unreachable(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=[]))) is None


async def test_mirror_is_used_for_probe_and_urls(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.example/")
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=[])

    assert await hub_unreachable(transport=httpx.MockTransport(answer)) is None
    assert seen == ["https://hf-mirror.example/api/models?limit=1"]
    assert hf_file_url("a/b", "c.safetensors").startswith("https://hf-mirror.example/a/b/resolve/main/")


async def test_flow_says_offline_once_and_quickly(tmp_path, monkeypatch):
    # A closed local port: refused at once, as an unplugged network would be after its timeout.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "nowhere_a.safetensors"}},
        "6": {"class_type": "VAELoader", "inputs": {"vae_name": "nowhere_b.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["6", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["8", 0]}},
    }
    sim = SimServer(step_delay=0.001)
    await sim.start()
    events = []
    began = time.monotonic()
    try:
        async with ComfyClient(sim.url) as client:
            outcome = await FixFlow(client, _api_workflow(prompt),
                                    FixOptions(poll_interval=0.02, yes=True, state_dir=tmp_path / "s"),
                                    emit=events.append).run()
    finally:
        await sim.stop()
    said = [e for e in events if "unreachable" in e.message]
    assert len(said) == 1 and "127.0.0.1" in said[0].message
    assert said[0].state == "info", "the Fix screen would mark the whole Models step failed"
    assert time.monotonic() - began < 10
    assert not outcome.accepted and sum("unreachable" in r for r in outcome.remaining) == 1
