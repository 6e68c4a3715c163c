"""ComfyUI-Manager emulation: recorded 4.0.4 shapes, pack installs that load on reboot, model downloads,
and the dialects of 4.2.1+ (POST state changes) and of the git-installed 3.x line."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from pistachio_tui.sim.server import SimServer
from tests.conftest import load_fixture
from tests.sim.sim_helpers import WsRecorder, key_shape, wait_until

CLIENT = "627fe3c3-0055-4883-8cc8-cee64e0ae422"


@pytest.fixture
async def manager_sim(tmp_path):
    server = SimServer(step_delay=0.001, manager=True, models_dir=tmp_path / "models", reboot_downtime=0.05)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http(manager_sim):
    async with httpx.AsyncClient(base_url=manager_sim.url, timeout=10) as client:
        yield client


@pytest.fixture
async def file_server():
    """A local HTTP server with one small model file to download."""
    async def tiny(request: web.Request) -> web.Response:
        return web.Response(body=b"\x00" * 4096)

    app = web.Application()
    app.router.add_get("/tiny_lora.safetensors", tiny)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def install_task(ui_id: str, pack_id: str, selected_version: str = "latest", **params) -> dict:
    recorded = load_fixture("manager_install_pack_offline")["request"]["body"]
    return {**recorded, "ui_id": ui_id, "client_id": CLIENT,
            "params": {**recorded["params"], "id": pack_id, "selected_version": selected_version, **params}}


@pytest.mark.parametrize("name", ["manager_get_version", "manager_get_db_mode", "manager_get_is_legacy_ui",
                                  "manager_get_installed", "manager_get_snapshot_list"])
async def test_get_endpoints_answer_as_recorded(http, name):
    recorded = load_fixture(name)
    response = await http.get(recorded["path"])
    assert response.status_code == recorded["status"]
    body = response.json() if isinstance(recorded["body"], dict) else response.text
    assert body == recorded["body"]


async def test_queue_status_shape(http):
    recorded = load_fixture("manager_get_queue_status")
    response = await http.get(recorded["path"])
    assert key_shape(response.json()) == key_shape(recorded["body"])
    mine = (await http.get(recorded["path"], params={"client_id": CLIENT})).json()
    assert mine["client_id"] == CLIENT


async def test_mappings_name_the_packs_of_missing_nodes(http):
    mappings = (await http.get("/v2/customnode/getmappings", params={"mode": "local"})).json()
    classes = {name: key for key, (names, _) in mappings.items() for name in names}
    assert classes["UltimateSDUpscale"] == "comfyui_ultimatesdupscale"
    assert classes["VHS_VideoCombine"] == "comfyui-videohelpersuite"
    assert classes["BrokenPackNode"] == "https://github.com/example/ComfyUI-BrokenPack"
    assert all(set(extra) == {"title_aux"} for _, extra in mappings.values())


async def test_unresolvable_pack_fails_like_the_recording(manager_sim, session, http):
    recorded = load_fixture("manager_install_pack_offline")
    async with WsRecorder(session, manager_sim.url, CLIENT) as ws:
        response = await http.post(recorded["request"]["url"], json=install_task("p1", "no-such-pack"))
        assert (response.status_code, response.text) == (recorded["post_status"], recorded["post_text"])
        assert (await http.get("/v2/manager/queue/start")).status_code == 200
        await wait_until(lambda: "cm-task-completed" in ws.types(), "the task to complete")
    messages = {m["type"]: m for m in ws.texts()}
    theirs = {step["msg"]["type"]: step["msg"] for step in recorded["ws_trace"]}
    for kind in ("cm-task-started", "cm-task-completed"):
        assert set(messages[kind]["data"]) == set(theirs[kind]["data"])
        assert set(messages[kind]["data"]["state"]) == set(theirs[kind]["data"]["state"])
    done = messages["cm-task-completed"]["data"]
    assert done["result"] == "Cannot resolve install target: 'no-such-pack@latest'"
    assert done["status"] == {"status_str": "error", "completed": True, "messages": [done["result"]]}
    assert key_shape(done["state"]["history"]["p1"]) == key_shape(theirs["cm-task-completed"]["data"]["state"]["history"]["p1"])
    started = messages["cm-task-started"]["data"]["state"]["running_queue"][0]
    assert set(started["params"]) == set(theirs["cm-task-started"]["data"]["state"]["running_queue"][0]["params"])


async def test_install_then_reboot_loads_the_nodes(manager_sim, session, http):
    assert "UltimateSDUpscale" not in (await http.get("/object_info")).json()
    async with WsRecorder(session, manager_sim.url, CLIENT) as ws:
        await http.post("/v2/manager/queue/task", json=install_task("p1", "comfyui_ultimatesdupscale"))
        await http.post("/v2/manager/queue/task", json=install_task(
            "p2", "comfyui-videohelpersuite", "nightly"))
        assert (await http.get("/v2/manager/queue/start")).status_code == 200
        assert (await http.get("/v2/manager/queue/start")).status_code == 201
        await wait_until(lambda: {"status": "all-done"} in [m["data"] for m in ws.texts()
                                                            if m["type"] == "cm-queue-status"], "all-done")
    results = [m["data"]["result"] for m in ws.texts() if m["type"] == "cm-task-completed"]
    assert results == ["success", "success"]
    installed = (await http.get("/v2/customnode/installed")).json()
    assert installed["comfyui_ultimatesdupscale"] == {
        "ver": "1.3.2", "cnr_id": "comfyui_ultimatesdupscale", "aux_id": None, "enabled": True}
    # On disk but not loaded until the server restarts.
    assert "UltimateSDUpscale" not in (await http.get("/object_info")).json()
    assert (await http.get("/v2/customnode/installed", params={"mode": "imported"})).json() == {}
    assert (await http.get("/v2/manager/reboot")).status_code == 200
    await wait_until(lambda: manager_sim._site is None, "the server to go down")  # noqa: SLF001
    info = await wait_until(lambda: object_info_when_up(manager_sim.url), "the server to come back")
    assert {"UltimateSDUpscale", "UltimateSDUpscaleNoUpscale", "VHS_VideoCombine"} <= set(info)
    assert set((await http.get("/v2/customnode/installed", params={"mode": "imported"})).json()) == {
        "comfyui_ultimatesdupscale", "comfyui-videohelpersuite"}
    status = (await http.get("/v2/manager/queue/status")).json()
    assert status["done_count"] == 0 and status["is_processing"] is False


async def object_info_when_up(url: str) -> dict | None:
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:
            return (await client.get("/object_info")).json()
    except httpx.TransportError:
        return None


async def test_pack_whose_import_fails_logs_it_after_reboot(manager_sim, session, http):
    url = "https://github.com/example/ComfyUI-BrokenPack"
    # A git-only pack cannot be installed as "latest" from the registry...
    await http.post("/v2/manager/queue/task", json=install_task("b0", url))
    # ...but can by repository, as the nightly version.
    await http.post("/v2/manager/queue/task", json=install_task("b1", url, "nightly", repository=url))
    async with WsRecorder(session, manager_sim.url, CLIENT) as ws:
        await http.get("/v2/manager/queue/start")
        await wait_until(lambda: ws.types().count("cm-task-completed") == 2, "both tasks")
    results = [m["data"]["result"] for m in ws.texts() if m["type"] == "cm-task-completed"]
    assert results == [f"Cannot resolve install target: '{url}@latest'", "success"]
    await manager_sim.restart(0)
    info = (await http.get("/object_info")).json()
    assert "BrokenPackNode" not in info
    messages = [entry["m"] for entry in (await http.get("/internal/logs/raw")).json()["entries"]]
    recorded = [e["m"] for e in load_fixture("logs_raw_import_failed")["body"]["entries"]]
    for marker in ("Traceback (most recent call last):", "module for custom nodes:", "(IMPORT FAILED)"):
        assert any(marker in m for m in messages), marker
        assert any(marker in m for m in recorded), marker
    assert any(m.startswith("Cannot import /workspace/ComfyUI/custom_nodes/ComfyUI-BrokenPack module for custom "
                            "nodes: No module named 'definitely_missing_dependency_xyz'") for m in messages)
    fail = await http.post("/v2/customnode/import_fail_info", json={"url": url})
    assert fail.status_code == 200 and "definitely_missing_dependency_xyz" in fail.json()["msg"]
    assert (await http.post("/v2/customnode/import_fail_info", json={"cnr_id": "comfyui-videohelpersuite"})
            ).status_code == 400


async def test_install_model_downloads_into_models_dir(manager_sim, session, http, file_server):
    recorded = load_fixture("manager_install_model")
    body = {**recorded["request"]["body"], "client_id": CLIENT, "url": f"{file_server}/tiny_lora.safetensors"}
    async with WsRecorder(session, manager_sim.url, CLIENT) as ws:
        response = await http.post(recorded["request"]["url"], json=body)
        assert (response.status_code, response.text) == (recorded["post_status"], recorded["post_text"])
        assert (await http.get("/v2/manager/queue/start")).status_code == recorded["start_status"]
        await wait_until(lambda: "cm-task-completed" in ws.types(), "the download")
    mine = [m for m in ws.texts() if m["type"].startswith("cm-task")]
    theirs = [step["msg"] for step in recorded["ws_trace"] if step["msg"]["type"].startswith("cm-task")]
    assert [m["type"] for m in mine] == [m["type"] for m in theirs]
    for a, b in zip(mine, theirs):
        assert set(a["data"]) == set(b["data"])
    assert mine[0]["data"]["state"]["running_queue"][0]["params"] == \
        theirs[0]["data"]["state"]["running_queue"][0]["params"] | {"url": body["url"]}
    assert mine[1]["data"]["status"] == theirs[1]["data"]["status"]
    target = manager_sim.models_dir / "loras" / "tiny_lora.safetensors"
    assert target.read_bytes() == b"\x00" * 4096
    assert "tiny_lora.safetensors" in (await http.get("/models/loras")).json()


async def test_install_model_failure_is_reported(manager_sim, session, http, file_server):
    body = {"client_id": CLIENT, "ui_id": "m2", "name": "gone", "type": "checkpoint", "save_path": "default",
            "url": f"{file_server}/missing.safetensors", "filename": "gone.safetensors"}
    async with WsRecorder(session, manager_sim.url, CLIENT) as ws:
        await http.post("/v2/manager/queue/install_model", json=body)
        await http.get("/v2/manager/queue/start")
        await wait_until(lambda: "cm-task-completed" in ws.types(), "the failed download")
    done = next(m["data"] for m in ws.texts() if m["type"] == "cm-task-completed")
    assert done["result"] == f"Model installation error: {body['url']}"
    assert done["status"]["status_str"] == "error"


async def test_invalid_requests(http):
    recorded = load_fixture("manager_task_invalid")
    loose = {"ui_id": "x", "client_id": CLIENT, "kind": "install", "params": {"bogus": True}}
    response = await http.post("/v2/manager/queue/task", json=loose)
    assert (response.status_code, response.text) == (recorded["status"], recorded["text"])
    assert (await http.post("/v2/manager/queue/task", json={"kind": "install"})).status_code == 400
    assert (await http.post("/v2/manager/queue/task", json={**loose, "kind": "dance"})).status_code == 400
    missing = await http.post("/v2/manager/queue/install_model", json={"ui_id": "m"})
    assert (missing.status_code, missing.text) == (400, "Missing required field: client_id")
    assert (await http.get("/v2/customnode/getmappings")).status_code == 500


async def test_history_of_a_task_fails_on_4_0_as_recorded(manager_sim, http):
    await http.post("/v2/manager/queue/task", json=install_task("p1", "comfyui_ultimatesdupscale"))
    await http.get("/v2/manager/queue/start")
    await wait_until(lambda: "p1" in manager_sim.manager.history, "the task to finish")
    recorded = load_fixture("manager_install_pack_offline")["history"]
    response = await http.get("/v2/manager/queue/history", params={"ui_id": "p1"})
    assert (response.status_code, response.text) == (recorded["status"], recorded["text"])
    assert (await http.get("/v2/manager/queue/reset")).status_code == 200


async def test_state_changes_are_get_on_4_0(http):
    for path in ("/v2/manager/queue/start", "/v2/manager/queue/reset", "/v2/manager/reboot"):
        assert (await http.post(path, json={})).status_code == 405
    assert "supports_csrf_post" not in (await http.get("/features")).json()["extension"]["manager"]


@pytest.fixture
async def sim_421():
    server = SimServer(step_delay=0.001, manager="V4.2.1", reboot_downtime=0.05)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_4_2_1_posts_state_changes_and_keeps_history(sim_421):
    async with httpx.AsyncClient(base_url=sim_421.url, timeout=10) as http:
        features = (await http.get("/features")).json()
        assert features["extension"]["manager"] == {"supports_v4": True, "supports_csrf_post": True}
        assert (await http.get("/v2/manager/queue/start")).status_code == 404
        form = await http.post("/v2/manager/queue/start", data={"x": "1"})
        assert form.status_code == 400 and "Content-Type" in form.text
        await http.post("/v2/manager/queue/task", json=install_task("p1", "comfyui_ultimatesdupscale"))
        assert (await http.post("/v2/manager/queue/start", json={})).status_code == 200
        await wait_until(lambda: "p1" in sim_421.manager.history, "the task to finish")
        one = (await http.get("/v2/manager/queue/history", params={"ui_id": "p1"})).json()["history"]
        assert one["ui_id"] == "p1" and one["result"] == "success"
        history = (await http.get("/v2/manager/queue/history", params={"client_id": CLIENT})).json()["history"]
        assert history["p1"]["status"]["status_str"] == "success"


@pytest.mark.parametrize(("version", "method"), [("V3.39.2", "GET"), ("V3.41", "POST")])
async def test_3x_line_queue_and_broadcast_results(session, version, method):
    server = SimServer(step_delay=0.001, manager=version, reboot_downtime=0.05)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            assert (await http.get("/v2/manager/version")).status_code == 404
            assert (await http.get("/manager/version")).text == version
            body = {"id": "comfyui_ultimatesdupscale", "version": "1.0.0", "selected_version": "latest",
                    "channel": "default", "mode": "cache", "ui_id": "p1", "skip_post_install": False, "pip": []}
            assert (await http.post("/manager/queue/install", json=body)).status_code == 200
            unknown = {**body, "version": "unknown", "ui_id": "p2",
                       "files": ["https://github.com/example/ComfyUI-BrokenPack"]}
            assert (await http.post("/manager/queue/install", json=unknown)).status_code == 200
            model = {"ui_id": "m1", "name": "x", "type": "lora", "base": "", "save_path": "default",
                     "url": "http://127.0.0.1:9/x.safetensors", "filename": "x.safetensors"}
            refused = await http.post("/manager/queue/install_model", json=model)
            assert (refused.status_code, refused.text) == (400, "Invalid model install request is detected")
            other, refused = ("POST", 405) if method == "GET" else ("GET", 404)
            assert (await http.request(other, "/manager/queue/start")).status_code == refused
            async with WsRecorder(session, server.url, "someone-else") as ws:
                assert (await http.request(method, "/manager/queue/start")).status_code == 200
                await wait_until(lambda: any(m["data"].get("status") == "done" for m in ws.texts()
                                             if m["type"] == "cm-queue-status"), "the done message")
            statuses = [m["data"] for m in ws.texts() if m["type"] == "cm-queue-status"]
            assert [d["target"] for d in statuses if d["status"] == "in_progress"] == ["p1", "p2"]
            assert statuses[-1]["nodepack_result"] == {"p1": "success", "p2": "success"}
            status = (await http.get("/manager/queue/status")).json()
            assert set(status) == {"total_count", "done_count", "in_progress_count", "is_processing"}
            assert status["done_count"] == 2
    finally:
        await server.stop()


async def test_strong_security_refuses_reboot_and_installs(tmp_path):
    server = SimServer(step_delay=0.001, manager="V3.39.2")
    await server.start()
    server.manager.security_level = "strong"
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            reboot = await http.get("/manager/reboot")
            assert (reboot.status_code, reboot.json()) == (403, {"error": "security_level"})
            install = await http.post("/manager/queue/install", json={"id": "x", "version": "1", "channel": "default",
                                                                       "mode": "cache"})
            assert install.status_code == 403
    finally:
        await server.stop()


async def test_manager_routes_absent_without_manager(sim):
    async with httpx.AsyncClient(base_url=sim.url) as client:
        assert (await client.get("/v2/manager/version")).status_code == 404


async def test_install_model_without_models_dir_lists_the_file(file_server):
    server = SimServer(step_delay=0.001, manager=True)
    await server.start()
    try:
        body = {"client_id": CLIENT, "ui_id": "m3", "name": "tiny", "type": "checkpoint",
                "save_path": "checkpoints/SD1.5", "url": f"{file_server}/tiny_lora.safetensors",
                "filename": "tiny.safetensors"}
        async with httpx.AsyncClient(base_url=server.url) as http:
            await http.post("/v2/manager/queue/install_model", json=body)
            await http.get("/v2/manager/queue/start")
            await wait_until(lambda: "m3" in server.manager.history, "the download")
            assert "SD1.5/tiny.safetensors" in (await http.get("/models/checkpoints")).json()
    finally:
        await server.stop()
