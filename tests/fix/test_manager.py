"""ManagerClient against replayed ComfyUI-Manager 4.0.4 traces."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.events import Connected, parse_message
from pistachio_tui.comfy.types import LogEntry
from pistachio_tui.fix.importfail import (
    ServerPaths,
    log_text,
    manual_install_commands,
    parse_import_failures,
    server_paths,
)
from pistachio_tui.fix.manager import InstallSpec, ManagerClient, ManagerError, install_specs
from pistachio_tui.fix.nodedb import NodeDB
from tests.conftest import load_fixture

URL = "http://comfy.test:8188"


def _reply(name: str) -> httpx.Response:
    trace = load_fixture(name)
    body = trace["body"]
    if isinstance(body, str):
        return httpx.Response(trace["status"], text=body)
    return httpx.Response(trace["status"], json=body)


class ReplayStream:
    """Stands in for EventStream: yields Connected, then a recorded websocket trace."""

    def __init__(self, trace: list[dict]):
        self._trace = trace
        self.closed = False

    def __call__(self, _client):
        return self

    def __aiter__(self):
        return self._events()

    async def _events(self):
        yield Connected("sid")
        for item in self._trace:
            yield parse_message(json.dumps(item["msg"]))

    async def close(self):
        self.closed = True


@pytest.fixture
async def comfy():
    client = ComfyClient(URL, client_id="627fe3c3-0055-4883-8cc8-cee64e0ae422")
    yield client
    await client.aclose()


@respx.mock(base_url=URL)
async def test_detect_and_read_state(respx_mock, comfy):
    for name in ("version", "db_mode", "installed", "queue_status"):
        trace = load_fixture(f"manager_get_{name}")
        respx_mock.get(trace["path"]).mock(return_value=_reply(f"manager_get_{name}"))
    manager = ManagerClient(comfy)
    assert await manager.version() == "V4.0.4"
    assert await manager.db_mode() == "cache"
    assert await manager.installed() == {}
    status = await manager.queue_status()
    assert status.done_count == 1 and status.idle


@respx.mock(base_url=URL)
async def test_absent_manager_is_none(respx_mock, comfy):
    respx_mock.get("/v2/manager/version").mock(return_value=httpx.Response(404, text="404: Not Found"))
    assert await ManagerClient(comfy).version() is None


@respx.mock(base_url=URL)
async def test_install_task_payload_and_failure_result(respx_mock, comfy):
    trace = load_fixture("manager_install_pack_offline")
    task = respx_mock.post("/v2/manager/queue/task").mock(return_value=httpx.Response(200))
    start = respx_mock.post("/v2/manager/queue/start").mock(return_value=httpx.Response(trace["start_status"]))
    respx_mock.get("/v2/manager/queue/status").mock(
        return_value=httpx.Response(200, json=trace["status_after"]))
    stream = ReplayStream(trace["ws_trace"])
    manager = ManagerClient(comfy, stream_factory=stream)
    spec = InstallSpec("comfyui_ultimatesdupscale", "latest", mode="local")
    ui_id = await manager.queue_install(spec, ui_id="p1")
    sent = json.loads(task.calls.last.request.content)
    assert sent == trace["request"]["body"]
    seen = []
    results = await manager.run([ui_id], timeout=5, poll_interval=0.01, on_event=seen.append)
    assert start.called and stream.closed
    result = results["p1"]
    assert result.ok is False and "Cannot resolve install target" in result.result
    assert [e.state for e in seen] == ["started", "completed"]


@respx.mock(base_url=URL)
async def test_install_model_payload_and_success(respx_mock, comfy):
    trace = load_fixture("manager_install_model")
    route = respx_mock.post("/v2/manager/queue/install_model").mock(return_value=httpx.Response(200))
    respx_mock.post("/v2/manager/queue/start").mock(return_value=httpx.Response(200))
    respx_mock.get("/v2/manager/queue/status").mock(return_value=httpx.Response(200, json=trace["status_after"]))
    manager = ManagerClient(comfy, stream_factory=ReplayStream(trace["ws_trace"]))
    body = trace["request"]["body"]
    ui_id = await manager.queue_install_model(
        name=body["name"], type=body["type"], base=body["base"], url=body["url"],
        filename=body["filename"], ui_id="m1")
    assert json.loads(route.calls.last.request.content) == body
    results = await manager.run([ui_id], timeout=5, poll_interval=0.01)
    assert results["m1"].ok is True


class SilentStream(ReplayStream):
    def __init__(self):
        super().__init__([])


@respx.mock(base_url=URL)
async def test_polling_fallback_when_no_events(respx_mock, comfy):
    respx_mock.post("/v2/manager/queue/start").mock(return_value=httpx.Response(200))
    respx_mock.get("/v2/manager/queue/status").mock(side_effect=[
        httpx.Response(200, json={"total_count": 1, "done_count": 0, "in_progress_count": 1,
                                  "pending_count": 0, "is_processing": True}),
        httpx.Response(200, json={"total_count": 1, "done_count": 0, "in_progress_count": 1,
                                  "pending_count": 0, "is_processing": True}),
        httpx.Response(200, json={"total_count": 0, "done_count": 1, "in_progress_count": 0,
                                  "pending_count": 0, "is_processing": True}),
    ])
    results = await ManagerClient(comfy, stream_factory=SilentStream()).run(["x"], timeout=5, poll_interval=0.01)
    assert results["x"].ok is None


@respx.mock(base_url=URL)
async def test_refused_task_is_a_manager_error(respx_mock, comfy):
    respx_mock.post("/v2/manager/queue/task").mock(return_value=httpx.Response(400, text="Invalid task data: x"))
    with pytest.raises(ManagerError, match="Invalid task data"):
        await ManagerClient(comfy).queue_install(InstallSpec("x"))


@respx.mock(base_url=URL)
async def test_reboot_tolerates_dropped_connection(respx_mock, comfy):
    respx_mock.post("/v2/manager/reboot").mock(side_effect=httpx.RemoteProtocolError("gone"))
    await ManagerClient(comfy).reboot()


def _import_failed_log() -> str:
    entries = load_fixture("logs_raw_import_failed")["body"]["entries"]
    return log_text(LogEntry(t=e["t"], m=e["m"]) for e in entries)


def test_import_failure_parsed_with_fix_command():
    text = _import_failed_log()
    paths = server_paths(text)
    assert paths == ServerPaths("/workspace/venv/bin/python", "/workspace/ComfyUI")
    [failure] = parse_import_failures(text)
    assert failure.pack == "ComfyUI-BrokenPack"
    assert failure.missing_module == "definitely_missing_dependency_xyz"
    assert failure.commands[0] == "/workspace/venv/bin/python -m pip install definitely-missing-dependency-xyz"


def test_import_failure_maps_module_to_pip_name():
    text = ("Cannot import /c/custom_nodes/Foo module for custom nodes: No module named 'cv2'\n"
            "   0.0 seconds (IMPORT FAILED): /c/custom_nodes/Foo\n")
    [failure] = parse_import_failures(text)
    assert failure.commands[0] == "python -m pip install opencv-python"


def test_install_specs_and_manual_commands():
    pack = NodeDB.from_manager_package().packs_for("UltimateSDUpscale")[0].pack
    specs = install_specs(pack)
    assert specs[0].params()["selected_version"] == "latest"
    assert specs[-1].params()["repository"] == "https://github.com/ssitu/ComfyUI_UltimateSDUpscale"
    commands = manual_install_commands(pack, ServerPaths("/venv/bin/python", "/srv/ComfyUI"))
    assert commands == [
        "git clone https://github.com/ssitu/ComfyUI_UltimateSDUpscale /srv/ComfyUI/custom_nodes/ComfyUI_UltimateSDUpscale",
        "/venv/bin/python -m pip install -r /srv/ComfyUI/custom_nodes/ComfyUI_UltimateSDUpscale/requirements.txt",
    ]


@respx.mock(base_url=URL)
async def test_all_done_ends_the_wait_for_missed_tasks(respx_mock, comfy):
    respx_mock.post("/v2/manager/queue/start").mock(return_value=httpx.Response(200))
    respx_mock.get("/v2/manager/queue/status").mock(return_value=httpx.Response(200, json={
        "total_count": 1, "done_count": 0, "in_progress_count": 1, "pending_count": 0, "is_processing": True}))
    stream = ReplayStream([
        {"msg": {"type": "cm-queue-status", "data": {"status": "all-done"}}},  # an earlier batch: ignored
        {"msg": {"type": "cm-task-started", "data": {"ui_id": "x", "kind": "install"}}},
        {"msg": {"type": "cm-queue-status", "data": {"status": "all-done"}}},
    ])
    results = await ManagerClient(comfy, stream_factory=stream).run(["x"], timeout=5, poll_interval=0.01)
    assert results["x"].ok is None


@respx.mock(base_url=URL)
async def test_queue_start_falls_back_to_get(respx_mock, comfy):
    respx_mock.post("/v2/manager/queue/start").mock(return_value=httpx.Response(405))
    get = respx_mock.get("/v2/manager/queue/start").mock(return_value=httpx.Response(200))
    await ManagerClient(comfy).start()
    assert get.called


@respx.mock(base_url=URL)
async def test_reboot_forbidden_says_restart_by_hand(respx_mock, comfy):
    respx_mock.post("/v2/manager/reboot").mock(return_value=httpx.Response(403))
    with pytest.raises(ManagerError, match="restart ComfyUI by hand"):
        await ManagerClient(comfy).reboot()
