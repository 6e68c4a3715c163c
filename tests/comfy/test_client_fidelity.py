"""Client and session behaviour that follows the real server (issue: fidelity with ComfyUI)."""

from __future__ import annotations

import json
import struct

import httpx
import pytest
import respx

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import AuthRequired, PromptRejected, Refused
from pistachio_tui.comfy.events import FeatureFlags, LogLines, PreviewImage, parse_message
from pistachio_tui.comfy.session import CONNECTED, ServerSession
from pistachio_tui.comfy.types import ValidationReport
from pistachio_tui.config import ServerConfig
from pistachio_tui.sim.server import SimServer
from tests.comfy.recorded import BASE
from tests.contract.prompts import quick_prompt, slow_prompt
from tests.sim.sim_helpers import wait_until

RECORDED_REFUSAL = {"status_code": 403, "headers": {"Server": "Python/3.11 aiohttp/3.14.5"}}


# -- 403: proxy or ComfyUI itself ------------------------------------------------

@pytest.mark.parametrize(("path", "expected"), [
    ("/view", "outside its input/output/temp folders"),
    ("/v2/manager/reboot", "security_level"),
    ("/queue", "origin check"),
])
async def test_comfyuis_own_403_says_which_refusal(path, expected):
    with respx.mock() as router:
        router.get(BASE + path).mock(return_value=httpx.Response(**RECORDED_REFUSAL))
        async with ComfyClient(BASE) as client:
            with pytest.raises(Refused) as caught:
                await client.request("GET", path)
    assert expected in caught.value.message and "auth header" not in caught.value.message
    # Code that handles every refusal (e.g. the fix flow) still catches it.
    assert isinstance(caught.value, AuthRequired)


async def test_a_proxys_403_still_asks_for_an_auth_header():
    page = httpx.Response(403, headers={"Server": "nginx", "Content-Type": "text/html"}, text="<html>403</html>")
    with respx.mock() as router:
        router.get(BASE + "/queue").mock(return_value=page)
        async with ComfyClient(BASE) as client:
            with pytest.raises(AuthRequired) as caught:
                await client.queue()
    assert not isinstance(caught.value, Refused) and "auth header" in caught.value.message


# -- missing nodes: both formats --------------------------------------------------

def test_both_missing_node_formats_name_the_class():
    old = ValidationReport.from_wire({"error": {"type": "invalid_prompt", "message":
                                                "Cannot execute because node FooNode does not exist.",
                                                "details": "Node ID '#3'", "extra_info": {}}, "node_errors": {}})
    new = ValidationReport.from_wire({"error": {
        "type": "missing_node_type", "message": "Node 'My Foo' not found. The custom node may not be installed.",
        "details": "Node ID '#3'", "extra_info": {"node_id": "3", "class_type": "FooNode", "node_title": "My Foo"}},
        "node_errors": {}})
    classless = ValidationReport.from_wire({"error": {
        "type": "missing_node_type", "message": "Node 'ID #3' has no class_type.",
        "extra_info": {"node_id": "3", "class_type": None, "node_title": None}}, "node_errors": {}})
    assert old.missing_node_types() == new.missing_node_types() == ["FooNode"]
    assert classless.missing_node_types() == []


async def test_the_newer_simulator_rejects_with_missing_node_type():
    sim = SimServer(newer=True)
    await sim.start()
    try:
        prompt = quick_prompt()
        prompt["1"] = {"class_type": "FooNode", "inputs": {}, "_meta": {"title": "My Foo"}}
        async with ComfyClient(sim.url) as client:
            with pytest.raises(PromptRejected) as caught:
                await client.submit(prompt)
    finally:
        await sim.stop()
    report = caught.value.report
    assert report.error_type == "missing_node_type" and report.missing_node_types() == ["FooNode"]
    assert report.message == "Node 'My Foo' not found. The custom node may not be installed."


# -- websocket frames ----------------------------------------------------------------

def test_type_4_previews_name_their_prompt_and_node():
    meta = json.dumps({"node_id": "3", "prompt_id": "p1", "display_node_id": "3", "image_type": "image/jpeg"}).encode()
    frame = struct.pack(">II", 4, len(meta)) + meta + b"\xff\xd8jpeg"
    event = parse_message(frame)
    assert event == PreviewImage("jpeg", b"\xff\xd8jpeg", "p1", "3", "3")
    assert parse_message(struct.pack(">II", 1, 1) + b"\xff\xd8") == PreviewImage("jpeg", b"\xff\xd8")


def test_logs_and_feature_flags_are_events():
    logs = parse_message(json.dumps({"type": "logs", "data": {"entries": [{"t": "t0", "m": "got prompt\n"}],
                                                               "size": None}}))
    assert isinstance(logs, LogLines) and logs.entries[0].m == "got prompt\n"
    assert parse_message(json.dumps({"type": "feature_flags", "data": {"max_upload_size": 1}})) == \
        FeatureFlags({"max_upload_size": 1})


# -- session: previews, interrupt, cancel ---------------------------------------------

async def running_session(sim: SimServer) -> ServerSession:
    session = ServerSession(ServerConfig("sim", sim.url), health_interval=0.2)
    session.start()
    await wait_until(lambda: session.state == CONNECTED, "the session to connect")
    return session


async def test_previews_arrive_only_when_asked_and_belong_to_their_prompt():
    sim = SimServer(step_delay=0.005, preview_every=1)
    await sim.start()
    session = await running_session(sim)
    try:
        sampler = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 5}},
                   "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "p", "images": ["1", 0]}}}
        plain = await session.submit(sampler)
        await wait_until(lambda: plain.finished, "the plain prompt")
        session.previews = True
        with_previews = await session.submit(_stepping_prompt())
        await wait_until(lambda: with_previews.finished, "the previewed prompt")
    finally:
        await session.stop()
        await sim.stop()
    assert plain.preview is None
    assert with_previews.preview is not None and with_previews.preview.prompt_id == with_previews.prompt_id
    assert with_previews.preview.image_type == "jpeg"
    entry = sim.queue.history[with_previews.prompt_id]
    assert entry["prompt"][3]["preview_method"] == "auto"


def _stepping_prompt() -> dict:
    # The simulator reports a node's ``steps`` as progress; SlowSteps is the recorded probe node.
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 9}},
            "2": {"class_type": "SlowSteps", "inputs": {"steps": 5, "delay": 0.0, "image": ["1", 0]}},
            "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "s", "images": ["2", 0]}}}


async def test_interrupt_without_a_running_prompt_sends_nothing():
    sim = SimServer()
    await sim.start()
    session = await running_session(sim)
    calls = []
    original = sim.executor.interrupt
    sim.executor.interrupt = lambda: calls.append(1) or original()
    try:
        assert await session.interrupt() is False
        assert await session.interrupt("not-running") is False
    finally:
        await session.stop()
        await sim.stop()
    assert calls == []


@pytest.mark.parametrize("newer", [False, True])
async def test_cancel_takes_one_pending_or_running_prompt_off(newer):
    sim = SimServer(node_delay=0.3, newer=newer)
    await sim.start()
    session = await running_session(sim)
    try:
        running = await session.submit(slow_prompt(6))
        pending = await session.submit(quick_prompt())
        await wait_until(lambda: running.status == "running", "the slow prompt to start")
        await session.cancel(pending.prompt_id)
        assert [i.prompt_id for i in session.queue.pending] == []
        await session.cancel(running.prompt_id)
        await wait_until(lambda: running.finished, "the running prompt to stop")
        assert session.client._has_job_cancel is newer
    finally:
        await session.stop()
        await sim.stop()
    assert running.status == "interrupted"
    assert pending.prompt_id not in sim.queue.history


async def test_the_session_follows_the_server_log():
    sim = SimServer()
    await sim.start()
    session = await running_session(sim)
    try:
        assert await session.follow_logs() is True
        sim.log.write("hello from the server\n")
        await wait_until(lambda: any(e.m == "hello from the server\n" for e in session.log_lines), "the log line")
        await session.unfollow_logs()
        assert sim.log_subscribers == set()
    finally:
        await session.stop()
        await sim.stop()


async def test_a_server_without_the_log_subscription_says_so():
    with respx.mock() as router:
        router.patch(BASE + "/internal/logs/subscribe").mock(return_value=httpx.Response(405))
        async with ComfyClient(BASE) as client:
            assert await client.subscribe_logs() is False


async def test_history_from_a_server_without_jobs_falls_back_to_history():
    entry = {"prompt": [1, "p1", {}, {}, []], "outputs": {}, "status": {"status_str": "success", "completed": True,
                                                                          "messages": []}}
    with respx.mock() as router:
        router.get(BASE + "/api/jobs").mock(return_value=httpx.Response(404, text="404: Not Found"))
        router.get(BASE + "/history/p1").mock(return_value=httpx.Response(200, json={"p1": entry}))
        async with ComfyClient(BASE) as client:
            found = await client.finished_entry("p1")
    assert found is not None and found.outcome == "success"
