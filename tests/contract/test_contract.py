"""The same cases, the same assertions, against the simulator and (when named) a real ComfyUI.

Each case says what a real ComfyUI 0.8.0 does; the simulator must do the same.
Run against a real one with ``PISTACHIO_LIVE_COMFY=http://host:port pytest tests/contract``.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import websockets

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import PromptRejected, Refused, ServerError
from pistachio_tui.comfy.session import CONNECTED, ServerSession
from pistachio_tui.comfy.tracker import LOST, PromptState
from pistachio_tui.comfy.types import HistoryEntry
from pistachio_tui.config import ServerConfig
from tests.contract.conftest import Target
from tests.contract.prompts import fresh_colour, quick_prompt, slow_prompt

LIMIT = 60.0


async def wait_for(check: Any, what: str, limit: float = LIMIT) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        result = check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def followed(target: Target) -> AsyncIterator[ServerSession]:
    """A live session on the target, as the TUI keeps one, once its websocket is up."""
    session = ServerSession(ServerConfig("contract", target.url), health_interval=0.5)
    session.start()
    try:
        await wait_for(lambda: session.state == CONNECTED, "the session to connect")
        yield session
    finally:
        await session.stop()


async def finished(session: ServerSession, prompt_id: str, limit: float = LIMIT) -> PromptState:
    return await wait_for(lambda: (s := session.tracker.get(prompt_id)) is not None and s.finished and s,
                          f"prompt {prompt_id[:8]} to finish", limit)


async def history_entry(target: Target, prompt_id: str) -> HistoryEntry:
    async with ComfyClient(target.url) as client:
        entry = await wait_for_entry(client, prompt_id)
    return entry


async def wait_for_entry(client: ComfyClient, prompt_id: str) -> HistoryEntry:
    for _ in range(int(LIMIT / 0.1)):
        found = await client.history(prompt_id)
        if prompt_id in found:
            return found[prompt_id]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{prompt_id} never reached the history")


# -- validation errors -------------------------------------------------------


async def rejection(target: Target, prompt: dict[str, Any]) -> PromptRejected:
    async with ComfyClient(target.url) as client:
        with pytest.raises(PromptRejected) as caught:
            await client.submit(prompt)
    return caught.value


async def test_a_missing_node_class_is_named(target: Target):
    prompt = {"1": {"class_type": "PistachioNoSuchNode", "inputs": {}},
              "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["1", 0]}}}
    report = (await rejection(target, prompt)).report
    # 0.8.0 says invalid_prompt; newer servers say missing_node_type. Both name the class.
    assert report.error_type in ("invalid_prompt", "missing_node_type")
    assert report.missing_node_types() == ["PistachioNoSuchNode"]
    assert report.node_errors == []


async def test_input_problems_are_reported_per_node(target: Target):
    prompt = quick_prompt()
    prompt["1"]["inputs"]["width"] = 99999
    report = (await rejection(target, prompt)).report
    assert report.error_type == "prompt_outputs_failed_validation"
    [error] = [e for node in report.node_errors for e in node.errors]
    assert (error.node_id, error.class_type, error.type, error.input_name) == (
        "1", "EmptyImage", "value_bigger_than_max", "width")
    assert error.received_value == 99999


async def test_a_missing_model_lists_what_the_server_has(target: Target):
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "pistachio-none.safetensors"}},
              "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["1", 1]}},
              "3": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["2", 0]}},
              "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
              "5": {"class_type": "KSampler", "inputs": {
                  "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
                  "seed": 1, "steps": 1, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
              "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
              "7": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["6", 0]}}}
    report = (await rejection(target, prompt)).report
    [missing] = report.missing_models()
    assert (missing.node_id, missing.input_name, missing.received_value) == (
        "1", "ckpt_name", "pistachio-none.safetensors")
    assert isinstance(missing.allowed, list)


async def test_no_outputs_and_a_missing_input(target: Target):
    report = (await rejection(target, {"1": quick_prompt()["1"]})).report
    assert report.error_type == "prompt_no_outputs"
    prompt = quick_prompt()
    del prompt["2"]["inputs"]["images"]
    [error] = [e for node in (await rejection(target, prompt)).report.node_errors for e in node.errors]
    assert (error.type, error.input_name) == ("required_input_missing", "images")


async def test_a_non_finite_number_comes_back_readable(target: Target):
    # A real server parses and echoes Infinity (Python's json); the report must survive it.
    prompt = slow_prompt(1)
    prompt["2"]["inputs"]["sigma"] = math.inf
    [error] = [e for node in (await rejection(target, prompt)).report.node_errors for e in node.errors]
    assert (error.type, error.input_name) == ("value_bigger_than_max", "sigma")
    assert error.received_value == math.inf


# -- one run on the wire ---------------------------------------------------------

#: What a real 0.8.0 sent for EmptyImage → SaveImage to the client that queued it
#: (``status`` frames left out: how many arrive depends on timing).
RUN_SEQUENCE = [
    ("feature_flags", None), ("execution_start", None), ("execution_cached", None), ("progress_state", None),
    ("executing", "1"), ("progress_state", None), ("progress_state", None), ("executing", "2"),
    ("executed", "2"), ("progress_state", None), ("execution_success", None), ("executing", None),
]


async def record(ws: Any, until: Any, into: list[Any]) -> None:
    while True:
        raw = await asyncio.wait_for(ws.recv(), LIMIT)
        message = json.loads(raw) if isinstance(raw, str) else {"type": "binary", "data": None}
        into.append(message)
        if until(message):
            return


def kinds(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(m["type"], m["data"].get("node") if m["type"] in ("executing", "executed") else None)
            for m in messages if m["type"] != "status"]


async def test_a_run_sends_the_recorded_sequence_to_its_client_only(target: Target):
    me, other = f"contract-{uuid.uuid4().hex[:8]}", f"contract-other-{uuid.uuid4().hex[:8]}"
    ws_base = target.url.replace("http", "ws", 1) + "/ws?clientId="
    async with websockets.connect(ws_base + me) as mine, websockets.connect(ws_base + other) as theirs, \
            httpx.AsyncClient(base_url=target.url, timeout=10) as http:
        await mine.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        got: list[dict[str, Any]] = []
        await record(mine, lambda m: m["type"] == "feature_flags", got)
        response = await http.post("/prompt", json={"prompt": quick_prompt(), "client_id": me})
        prompt_id = response.json()["prompt_id"]
        await record(mine, lambda m: m["type"] == "executing" and m["data"].get("node") is None, got)
        seen_by_other: list[dict[str, Any]] = []
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(record(theirs, lambda m: False, seen_by_other), 0.5)
    assert kinds(got) == RUN_SEQUENCE
    assert all(m["data"].get("prompt_id") == prompt_id for m in got if m["type"] not in ("status", "feature_flags"))
    assert {m["type"] for m in seen_by_other} <= {"status"}


async def test_history_and_jobs_describe_a_run_alike(target: Target):
    async with followed(target) as session:
        state = await session.submit(quick_prompt("contract_hist"))
        state = await finished(session, state.prompt_id)
        entry = await history_entry(target, state.prompt_id)
        job = await session.client.job(state.prompt_id)
        page = await session.client.jobs(statuses=["completed"], limit=5)
    assert state.status == "success" and state.outputs == entry.outputs
    assert [o.filename.startswith("contract_hist") for o in entry.outputs] == [True]
    assert set(entry.raw) >= {"prompt", "outputs", "status", "meta"}
    assert job is not None and job.status == "completed" and job.outputs_count == 1
    from_job = job.history_entry()
    assert from_job is not None
    assert (from_job.outputs, from_job.outcome, from_job.started_at, from_job.finished_at, from_job.prompt) == (
        entry.outputs, entry.outcome, entry.started_at, entry.finished_at, entry.prompt)
    listed = next(j for j in page.jobs if j.id == state.prompt_id)
    assert listed.detail is None and listed.preview == entry.outputs[0]
    assert page.total >= 1


async def test_jobs_refuse_bad_queries_as_the_server_does(target: Target):
    async with httpx.AsyncClient(base_url=target.url, timeout=10) as http:
        bad = await http.get("/api/jobs", params={"status": "done"})
        unknown = await http.get(f"/api/jobs/{uuid.uuid4()}")
        cancel = await http.post(f"/api/jobs/{uuid.uuid4()}/cancel")
    assert bad.status_code == 400 and bad.json()["error"].startswith("Invalid status value(s): done.")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Job not found"})
    # 0.8.0 has no per-job cancel: GET is the only method on that path.
    assert cancel.status_code in (404, 405)


# -- interrupt -----------------------------------------------------------------


async def test_interrupt_stops_only_the_running_prompt(target: Target):
    async with followed(target) as session:
        running = await session.submit(slow_prompt())
        waiting = await session.submit(quick_prompt("contract_after"))
        await wait_for(lambda: running.current_node not in (None, "1"), "the blurs to be under way")
        # Interrupting a prompt that is not running sends nothing.
        assert await session.interrupt(waiting.prompt_id) is False
        assert await session.interrupt(running.prompt_id) is True
        await finished(session, running.prompt_id)
        await finished(session, waiting.prompt_id)
        entry = await history_entry(target, running.prompt_id)
    assert running.status == "interrupted" and entry.outcome == "interrupted"
    assert running.interrupted is not None and running.interrupted.node_type in ("ImageBlur", "PreviewImage")
    assert waiting.status == "success"


async def test_an_interrupt_naming_another_prompt_stops_nothing(target: Target):
    """What a batch's cancel relies on: ``{"prompt_id": X}`` stops X only if X runs (a bare
    interrupt stops whatever runs, another client's prompt too); JSON that is not an object
    is a 500, as 0.8.0's handler calls ``.get`` on it."""
    async with followed(target) as session, httpx.AsyncClient(base_url=target.url, timeout=10) as http:
        running = await session.submit(slow_prompt())
        await wait_for(lambda: running.current_node not in (None, "1"), "the blurs to be under way")
        assert (await http.post("/interrupt", json={"prompt_id": str(uuid.uuid4())})).status_code == 200
        assert (await http.post("/interrupt", content="[]")).status_code == 500
        await finished(session, running.prompt_id)
    # Neither stopped it: it ran to the end.
    assert running.status == "success" and running.interrupted is None


# -- prompts of other clients ------------------------------------------------------


async def test_a_prompt_queued_by_another_client_is_seen_running_then_finished(target: Target):
    async with followed(target) as session, httpx.AsyncClient(base_url=target.url, timeout=10) as curl:
        response = await curl.post("/prompt", json={"prompt": slow_prompt(4), "client_id": "a-browser-tab"})
        prompt_id = response.json()["prompt_id"]
        await wait_for(lambda: (s := session.tracker.get(prompt_id)) is not None and s.status == "running",
                       "the other client's prompt to show as running")
        state = await finished(session, prompt_id)
        entry = await history_entry(target, prompt_id)
    assert state.ours is False
    assert state.status == "success" and state.outputs == entry.outputs and state.outputs
    assert state.finished_at == entry.finished_at and state.fraction == 1.0


async def test_a_prompt_queued_without_client_id_finishes_too(target: Target):
    async with followed(target) as session, httpx.AsyncClient(base_url=target.url, timeout=10) as curl:
        response = await curl.post("/prompt", json={"prompt": slow_prompt(2)})
        prompt_id = response.json()["prompt_id"]
        state = await finished(session, prompt_id)
        entry = await history_entry(target, prompt_id)
    assert state.status == "success" and state.outputs == entry.outputs


# -- /view -------------------------------------------------------------------------


async def test_view_errors_say_what_happened(target: Target):
    async with ComfyClient(target.url) as client:
        with pytest.raises(ServerError) as traversal:
            await client.view("../secrets.png")
        with pytest.raises(Refused) as escape:
            await client.view("a.png", subfolder="../../etc")
        with pytest.raises(ServerError) as missing:
            await client.view(f"pistachio-{uuid.uuid4().hex}.png")
    assert traversal.value.status == 400
    assert "outside its input/output/temp folders" in escape.value.message
    assert "proxy" not in escape.value.message
    assert missing.value.status == 404


async def test_view_serves_small_previews(target: Target):
    async with followed(target) as session:
        state = await finished(session, (await session.submit(quick_prompt("contract_view"))).prompt_id)
        output = state.outputs[0]
        thumb = await session.client.view(output.filename, output.subfolder, output.type, preview="webp;50")
        full = await session.client.view(output.filename, output.subfolder, output.type)
    assert thumb[:4] == b"RIFF" and thumb[8:12] == b"WEBP"
    assert full.startswith(b"\x89PNG")


async def test_a_foreign_origin_is_refused_by_comfyui_itself(target: Target):
    async with ComfyClient(target.url, headers={"Origin": "http://elsewhere.example"}) as client:
        with pytest.raises(Refused) as refused:
            await client.queue()
    assert "origin" in refused.value.message


# -- logs --------------------------------------------------------------------------


async def test_the_log_streams_after_subscribing(target: Target):
    async with followed(target) as session:
        assert await session.follow_logs() is True
        await session.submit(quick_prompt())
        # Every queued prompt prints "got prompt" on the server console.
        await wait_for(lambda: any("got prompt" in e.m for e in session.log_lines), "the log line of our prompt")
        await session.unfollow_logs()


# -- submit race and restart ---------------------------------------------------------


async def test_a_prompt_that_ends_before_the_submit_answer_still_finishes(target: Target):
    async with followed(target) as session:
        prompt = quick_prompt()
        await finished(session, (await session.submit(prompt)).prompt_id)
        # The same prompt again is fully cached: it ends within the POST's round trip.
        again = await session.submit(prompt)
        state = await finished(session, again.prompt_id, limit=10)
        entry = await history_entry(target, again.prompt_id)
    assert state.status == "success" and state.cached_nodes == ["1", "2"] == entry.cached_nodes
    assert state.outputs == entry.outputs


async def test_a_restart_ends_the_prompt_it_lost_and_the_next_one_runs(target: Target):
    async with followed(target) as session:
        lost = await session.submit(slow_prompt(10))
        await wait_for(lambda: lost.status == "running", "the slow prompt to start")
        await target.restart()
        state = await finished(session, lost.prompt_id, limit=120)
        assert state.status == "error" and state.error is not None and state.error.exception_type == LOST
        await wait_for(lambda: session.state == CONNECTED, "the session to reconnect", limit=120)
        fresh = await finished(session, (await session.submit(quick_prompt())).prompt_id)
    assert fresh.status == "success"
    assert fresh.fraction == 1.0
    _ = fresh_colour
