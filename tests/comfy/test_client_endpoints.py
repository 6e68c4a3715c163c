"""Every read/write endpoint of ComfyClient against the recorded answers of ComfyUI 0.8.0."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from pistachio_tui.comfy.client import ComfyClient
from tests.comfy.recorded import BASE, json_response, replay
from tests.conftest import load_fixture


@pytest.fixture
async def client():
    async with ComfyClient(BASE, client_id="cid-1") as c:
        yield c


@pytest.fixture
def router():
    with respx.mock(assert_all_called=True) as r:
        yield r


async def test_system_stats_parses_versions_and_devices(client, router):
    replay(router, "GET", "/system_stats", "system_stats")
    stats = await client.system_stats()
    assert stats.comfyui_version == "0.8.0"
    assert stats.pytorch_version == "2.14.1+cu130"
    assert stats.os == "linux"
    assert stats.ram_total == 25276063744 and stats.ram_free == 23644778496
    assert "--cpu" in stats.argv
    [device] = stats.devices
    assert (device.name, device.type, device.index) == ("cpu", "cpu", None)
    assert device.vram_free == 23644778496 and device.torch_vram_total == 25276063744
    assert stats.raw["system"]["required_frontend_version"] == "1.35.9"


async def test_object_info_is_cached_until_refreshed_or_invalidated(client, router):
    route = replay(router, "GET", "/object_info", "object_info")
    info = await client.object_info()
    assert info == load_fixture("object_info")["body"] and "KSampler" in info
    assert await client.object_info() is info
    assert route.call_count == 1
    await client.object_info(refresh=True)
    assert route.call_count == 2
    client.invalidate_object_info()
    await client.object_info()
    assert route.call_count == 3


async def test_node_info_asks_for_one_class_when_nothing_is_cached(client, router):
    replay(router, "GET", "/object_info/KSampler", "object_info_KSampler")
    node = await client.node_info("KSampler")
    assert node["input"]["required"]["steps"][0] == "INT"


async def test_model_folders_and_folder_contents(client, router):
    replay(router, "GET", "/models", "models")
    replay(router, "GET", "/models/checkpoints", "models_checkpoints")
    folders = await client.models()
    assert "checkpoints" in folders and "loras" in folders and len(folders) == 21
    assert await client.models("checkpoints") == []


async def test_embeddings_extensions_features(client, router):
    replay(router, "GET", "/embeddings", "embeddings")
    replay(router, "GET", "/extensions", "extensions")
    replay(router, "GET", "/features", "features")
    assert await client.embeddings() == []
    assert "/extensions/core/groupNode.js" in await client.extensions()
    features = await client.features()
    assert features["extension"]["manager"]["supports_v4"] is True


async def test_queue_idle_and_queue_remaining(client, router):
    replay(router, "GET", "/queue", "queue_idle")
    replay(router, "GET", "/prompt", "prompt_get")
    queue = await client.queue()
    assert queue.running == [] and queue.pending == []
    assert await client.queue_remaining() == 0


async def test_busy_queue_entries_are_lists(client, router):
    during = load_fixture("interrupted.during")
    router.get(BASE + "/queue").mock(return_value=json_response(during["queue_busy"]))
    router.get(BASE + "/prompt").mock(return_value=json_response(during["prompt_get_busy"]))
    queue = await client.queue()
    [running] = queue.running
    [pending] = queue.pending
    assert running.number == 15 and running.prompt_id == "bb404235-9966-430e-9207-9f905f3fa763"
    assert running.prompt["2"]["class_type"] == "SlowSteps"
    assert running.outputs_to_execute == ["3"]
    assert running.extra_data["client_id"] == "5f91ddd5-5a8b-4fad-9eca-0868b3d152f4"
    assert pending.prompt_id == during["pending_id"] and pending.number == 16
    assert queue.ids() == {running.prompt_id, pending.prompt_id}
    assert await client.queue_remaining() == 2


async def test_submit_returns_prompt_id_and_sends_client_id(client, router):
    route = replay(router, "POST", "/prompt", "success.post_prompt")
    prompt = {"3": {"class_type": "SaveImage", "inputs": {}}}
    result = await client.submit(prompt, extra_data={"extra_pnginfo": {"workflow": {}}}, front=True)
    assert result.prompt_id == "09bcf2fc-d848-487a-9010-c6524bb0244f" and result.number == 12
    sent = json.loads(route.calls.last.request.content)
    assert sent == {"prompt": prompt, "client_id": "cid-1", "extra_data": {"extra_pnginfo": {"workflow": {}}},
                    "front": True}


@pytest.mark.parametrize("name", ["cached", "exec_error", "interrupted"])
async def test_submit_other_recorded_answers(client, router, name):
    replay(router, "POST", "/prompt", f"{name}.post_prompt")
    expected = load_fixture(f"{name}.post_prompt")["body"]
    result = await client.submit({})
    assert (result.prompt_id, result.number) == (expected["prompt_id"], expected["number"])


async def test_delete_clear_interrupt_free_send_the_upstream_bodies(client, router):
    during = load_fixture("interrupted.during")
    queue_route = router.post(BASE + "/queue").mock(return_value=httpx.Response(during["delete_status"]))
    interrupt_route = router.post(BASE + "/interrupt").mock(return_value=httpx.Response(during["interrupt_status"]))
    replay(router, "POST", "/free", "free")
    await client.delete([during["pending_id"]])
    await client.clear_queue()
    await client.interrupt("p-1")
    await client.interrupt()
    await client.free(unload_models=True, free_memory=False)
    bodies = [json.loads(c.request.content) for c in queue_route.calls]
    assert bodies == [{"delete": [during["pending_id"]]}, {"clear": True}]
    assert [json.loads(c.request.content) for c in interrupt_route.calls] == [{"prompt_id": "p-1"}, {}]
    free_call = router.routes[-1].calls.last
    assert json.loads(free_call.request.content) == {"unload_models": True, "free_memory": False}


async def test_view_returns_the_file_bytes(client, router, tmp_path):
    from tests.conftest import FIXTURES_DIR

    png = (FIXTURES_DIR / "success_output.png").read_bytes()
    headers = load_fixture("view_headers")["headers"]
    route = router.get(BASE + "/view").mock(return_value=httpx.Response(200, content=png, headers={
        "content-type": headers["content-type"], "content-disposition": headers["content-disposition"]}))
    data = await client.view("probe_00002_.png")
    assert data == png and len(data) == int(headers["content-length"])
    assert dict(route.calls.last.request.url.params) == {"filename": "probe_00002_.png", "subfolder": "",
                                                        "type": "output"}


async def test_upload_image_is_multipart(client, router):
    route = replay(router, "POST", "/upload/image", "upload_image")
    answer = await client.upload_image(b"\x89PNG...", "upload_probe.png", overwrite=True)
    assert answer == {"name": "upload_probe.png", "subfolder": "", "type": "input"}
    request = route.calls.last.request
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="overwrite"\r\n\r\ntrue' in request.content
    assert b'filename="upload_probe.png"' in request.content


async def test_logs_are_entries_with_time_and_text(client, router):
    replay(router, "GET", "/internal/logs/raw", "logs_raw")
    entries = await client.logs()
    assert entries[0].t == "2026-11-22T16:23:34.804328"
    assert entries[0].m == "Checkpoint files will always be loaded safely.\n"
    assert len(entries) == len(load_fixture("logs_raw")["body"]["entries"])


@pytest.mark.parametrize(("base", "expected"), [
    ("http://127.0.0.1:8188", "ws://127.0.0.1:8188/ws?clientId=abc"),
    ("https://pod-8188.proxy.example/", "wss://pod-8188.proxy.example/ws?clientId=abc"),
    ("http://host/comfy", "ws://host/comfy/ws?clientId=abc"),
])
async def test_ws_url(base, expected):
    async with ComfyClient(base, client_id="abc") as c:
        assert c.ws_url() == expected


async def test_repr_hides_headers():
    async with ComfyClient(BASE, headers={"Authorization": "Bearer secret-token"}) as c:
        assert "secret" not in repr(c)


async def test_post_json_accepts_any_2xx_and_empty_bodies(client, router):
    start = load_fixture("manager_install_pack_offline")["start_status"]
    router.post(BASE + "/v2/manager/queue/start").mock(return_value=httpx.Response(start))
    router.post(BASE + "/v2/manager/queue/task").mock(return_value=json_response({"ok": True}))
    assert await client.post_json("/v2/manager/queue/start") is None
    assert await client.post_json("/v2/manager/queue/task", {"kind": "install"}) == {"ok": True}


async def test_a_large_answer_is_parsed_off_the_event_loop(client, router, monkeypatch):
    import threading

    from pistachio_tui.comfy.client import DECODE_IN_THREAD_BYTES

    big = {f"Node{i}": {"input": {"required": {}}, "description": "x" * 200} for i in range(4000)}
    assert len(json.dumps(big)) > DECODE_IN_THREAD_BYTES
    router.get(f"{BASE}/object_info").mock(return_value=httpx.Response(200, json=big))
    replay(router, "GET", "/system_stats", "system_stats")
    parsed_on, real_json = [], httpx.Response.json

    def spy(self, **kwargs):
        parsed_on.append(threading.current_thread() is threading.main_thread())
        return real_json(self, **kwargs)

    monkeypatch.setattr(httpx.Response, "json", spy)
    assert await client.object_info() == big
    await client.system_stats()
    assert parsed_on == [False, True], "the big node list in a thread, the small stats on the loop"
