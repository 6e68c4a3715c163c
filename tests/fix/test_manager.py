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
from pistachio_tui.fix.manager import InstallSpec, ManagerClient, ManagerError, dialect_for, install_specs
from pistachio_tui.fix.nodedb import NodeDB
from pistachio_tui.remedies import Need
from tests.conftest import load_fixture

URL = "http://comfy.test:8188"
V404 = dialect_for("V4.0.4", v2=True)
V421 = dialect_for("V4.2.1", v2=True)


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
    for name in ("version", "db_mode", "installed", "queue_status", "is_legacy_ui"):
        trace = load_fixture(f"manager_get_{name}")
        respx_mock.get(trace["path"]).mock(return_value=_reply(f"manager_get_{name}"))
    respx_mock.get("/features").mock(return_value=_reply("features"))
    manager = ManagerClient(comfy)
    assert await manager.version() == "V4.0.4"
    assert manager.dialect == V404 and V404.state_method == "GET"
    assert await manager.db_mode() == "cache"
    assert await manager.installed() == {}
    status = await manager.queue_status()
    assert status.done_count == 1 and status.idle


@respx.mock(base_url=URL)
async def test_absent_manager_is_none(respx_mock, comfy):
    respx_mock.get("/v2/manager/version").mock(return_value=httpx.Response(404, text="404: Not Found"))
    respx_mock.get("/manager/version").mock(return_value=httpx.Response(404, text="404: Not Found"))
    assert await ManagerClient(comfy).version() is None


@respx.mock(base_url=URL)
async def test_a_proxy_page_is_not_a_manager(respx_mock, comfy):
    respx_mock.get("/v2/manager/version").mock(return_value=httpx.Response(200, text="<html>login</html>"))
    respx_mock.get("/manager/version").mock(return_value=httpx.Response(200, text="<html>login</html>"))
    assert await ManagerClient(comfy).detect() is None


@respx.mock(base_url=URL)
async def test_install_task_payload_and_failure_result(respx_mock, comfy):
    trace = load_fixture("manager_install_pack_offline")
    task = respx_mock.post("/v2/manager/queue/task").mock(return_value=httpx.Response(200))
    start = respx_mock.get("/v2/manager/queue/start").mock(return_value=httpx.Response(trace["start_status"]))
    respx_mock.get("/v2/manager/queue/status").mock(
        return_value=httpx.Response(200, json=trace["status_after"]))
    stream = ReplayStream(trace["ws_trace"])
    manager = ManagerClient(comfy, dialect=V404, stream_factory=stream)
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
    respx_mock.get("/v2/manager/queue/start").mock(return_value=httpx.Response(200))
    respx_mock.get("/v2/manager/queue/status").mock(return_value=httpx.Response(200, json=trace["status_after"]))
    manager = ManagerClient(comfy, dialect=V404, stream_factory=ReplayStream(trace["ws_trace"]))
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
    respx_mock.get("/v2/manager/queue/start").mock(return_value=httpx.Response(200))
    respx_mock.get("/v2/manager/queue/history").mock(return_value=httpx.Response(400))
    respx_mock.get("/v2/manager/queue/status").mock(side_effect=[
        httpx.Response(200, json={"total_count": 1, "done_count": 0, "in_progress_count": 1,
                                  "pending_count": 0, "is_processing": True}),
        httpx.Response(200, json={"total_count": 1, "done_count": 0, "in_progress_count": 1,
                                  "pending_count": 0, "is_processing": True}),
        httpx.Response(200, json={"total_count": 0, "done_count": 1, "in_progress_count": 0,
                                  "pending_count": 0, "is_processing": True}),
    ])
    results = await ManagerClient(comfy, dialect=V404, stream_factory=SilentStream()).run(
        ["x"], timeout=5, poll_interval=0.01)
    assert results["x"].ok is None


@respx.mock(base_url=URL)
async def test_polling_fallback_reads_the_4_2_history(respx_mock, comfy):
    respx_mock.post("/v2/manager/queue/start").mock(return_value=httpx.Response(200))
    respx_mock.get("/v2/manager/queue/status").mock(side_effect=[httpx.Response(200, json={
        "total_count": 0, "done_count": done, "in_progress_count": 0, "pending_count": 0, "is_processing": False})
        for done in (0, 1)])
    respx_mock.get("/v2/manager/queue/history", params={"ui_id": "x"}).mock(return_value=httpx.Response(
        200, json={"history": {"ui_id": "x", "kind": "install", "result": "failed",
                               "status": {"status_str": "error", "completed": True, "messages": ["failed"]}}}))
    manager = ManagerClient(comfy, dialect=V421, stream_factory=SilentStream())
    result = (await manager.run(["x"], timeout=5, poll_interval=0.01))["x"]
    assert result.ok is False and result.result == "failed"
    assert "security_level = normal" in await manager.explain(result)


@respx.mock(base_url=URL)
async def test_refused_task_is_a_manager_error(respx_mock, comfy):
    respx_mock.post("/v2/manager/queue/task").mock(return_value=httpx.Response(400, text="Invalid task data: x"))
    with pytest.raises(ManagerError, match="Invalid task data"):
        await ManagerClient(comfy, dialect=V404).queue_install(InstallSpec("x"))


@respx.mock(base_url=URL)
async def test_reboot_tolerates_dropped_connection(respx_mock, comfy):
    respx_mock.post("/v2/manager/reboot").mock(side_effect=httpx.RemoteProtocolError("gone"))
    await ManagerClient(comfy, dialect=V421).reboot()


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
    respx_mock.get("/v2/manager/queue/start").mock(return_value=httpx.Response(200))
    respx_mock.get("/v2/manager/queue/history").mock(return_value=httpx.Response(400))
    respx_mock.get("/v2/manager/queue/status").mock(return_value=httpx.Response(200, json={
        "total_count": 1, "done_count": 0, "in_progress_count": 1, "pending_count": 0, "is_processing": True}))
    stream = ReplayStream([
        {"msg": {"type": "cm-queue-status", "data": {"status": "all-done"}}},  # an earlier batch: ignored
        {"msg": {"type": "cm-task-started", "data": {"ui_id": "x", "kind": "install"}}},
        {"msg": {"type": "cm-queue-status", "data": {"status": "all-done"}}},
    ])
    results = await ManagerClient(comfy, dialect=V404, stream_factory=stream).run(
        ["x"], timeout=5, poll_interval=0.01)
    assert results["x"].ok is None


@respx.mock(base_url=URL)
async def test_a_wrong_method_guess_is_corrected_once(respx_mock, comfy):
    post = respx_mock.post("/v2/manager/queue/start").mock(return_value=httpx.Response(405))
    get = respx_mock.get("/v2/manager/queue/start").mock(return_value=httpx.Response(200))
    manager = ManagerClient(comfy, dialect=V421)
    await manager.start()
    await manager.start()
    assert (post.call_count, get.call_count) == (1, 2)
    assert manager.dialect is not None and manager.dialect.state_method == "GET"


@respx.mock(base_url=URL)
async def test_a_get_to_a_post_route_is_a_404_and_corrected(respx_mock, comfy):
    get = respx_mock.get("/manager/queue/start").mock(return_value=httpx.Response(404, text="404: Not Found"))
    post = respx_mock.post("/manager/queue/start").mock(return_value=httpx.Response(200))
    manager = ManagerClient(comfy, dialect=dialect_for("V3.39", v2=False))
    await manager.start()
    assert get.called and post.called and manager.dialect.state_method == "POST"


@respx.mock(base_url=URL)
async def test_reboot_forbidden_says_why_at_once(respx_mock, comfy):
    respx_mock.get("/v2/manager/reboot").mock(return_value=httpx.Response(403))
    respx_mock.get("/internal/logs/raw").mock(return_value=httpx.Response(200, json={"entries": [
        {"t": "1", "m": "[ComfyUI-Manager] network_mode: offline\n"}], "size": {"cols": 80, "rows": 24}}))
    with pytest.raises(ManagerError) as info:
        await ManagerClient(comfy, dialect=V404).reboot()
    message = info.value.message
    assert "refused GET /v2/manager/reboot (403)" in message
    assert "security_level" in message and "network_mode = offline" in message


@respx.mock(base_url=URL)
async def test_3x_model_download_refusal_says_what_instead(respx_mock, comfy):
    respx_mock.post("/manager/queue/install_model").mock(
        return_value=httpx.Response(400, text="Invalid model install request is detected"))
    manager = ManagerClient(comfy, dialect=dialect_for("V3.41", v2=False))
    with pytest.raises(ManagerError) as info:
        await manager.queue_install_model(name="m", type="lora", url="https://x/m.safetensors",
                                          filename="m.safetensors")
    assert "only downloads files listed in its own model list" in info.value.message
    assert info.value.needs is Need.COMFY_DIR and "--" not in info.value.message, "each front end says how"


@pytest.mark.parametrize(("answers", "expected"), [
    # The git-installed line: no /v2 routes; POST from 3.40 on.
    ({"/manager/version": "V3.39.2"}, ("", True, "GET")),
    ({"/manager/version": "V3.41"}, ("", True, "POST")),
    # 4.x: the version, or the flag in /features, says POST; the legacy UI keeps the 3.x queue under /v2.
    ({"/v2/manager/version": "V4.1"}, ("/v2", False, "GET")),
    ({"/v2/manager/version": "V4.1", "csrf": True}, ("/v2", False, "POST")),
    ({"/v2/manager/version": "V4.0.4", "legacy": True}, ("/v2", True, "GET")),
])
async def test_detection_of_each_line(comfy, answers, expected):
    manager_flags = {"supports_v4": True, **({"supports_csrf_post": True} if answers.get("csrf") else {})}
    with respx.mock(base_url=URL, assert_all_called=False) as server:
        for path in ("/v2/manager/version", "/manager/version"):
            server.get(path).mock(return_value=httpx.Response(200, text=answers[path]) if path in answers
                                  else httpx.Response(404, text="404: Not Found"))
        server.get("/features").mock(return_value=httpx.Response(200, json={"extension": {"manager": manager_flags}}))
        server.get("/v2/manager/is_legacy_manager_ui").mock(
            return_value=httpx.Response(200, json={"is_legacy_manager_ui": bool(answers.get("legacy"))}))
        dialect = await ManagerClient(comfy).detect()
    assert dialect is not None and (dialect.prefix, dialect.legacy_queue, dialect.state_method) == expected
