"""Running prompts: the websocket sequence, history entries and outputs match the recorded server."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest

from pistachio_tui.sim.executor import execution_order
from tests.conftest import load_fixture
from tests.sim.sim_helpers import (
    WsRecorder,
    key_shape,
    recorded_messages,
    recorded_prompt,
    recorded_types,
    wait_until,
)

CLIENT = "test-client"


async def submit(http, prompt, extra=None, **fields):
    body = {"prompt": prompt, "client_id": CLIENT, **fields}
    if extra:
        body["extra_data"] = extra
    response = await http.post("/prompt", json=body)
    assert response.status_code == 200, response.text
    return response.json()["prompt_id"]


async def run_recorded(sim, session, http, name):
    prompt, extra = recorded_prompt(name)
    async with WsRecorder(session, sim.url, CLIENT) as ws:
        prompt_id = await submit(http, prompt, extra)
        messages = await ws.wait_for_end(prompt_id)
        binaries = ws.binaries()
    return prompt_id, messages, binaries


async def test_success_run_sends_the_recorded_sequence(sim, session, http):
    prompt_id, messages, _ = await run_recorded(sim, session, http, "success")
    assert [m["type"] for m in messages] == recorded_types("success")
    recorded = recorded_messages("success")
    for mine, theirs in zip(messages, recorded):
        assert key_shape(mine) == key_shape(theirs), mine["type"]
    assert messages[0]["data"]["sid"] == CLIENT
    assert all(m["data"].get("prompt_id") in (None, prompt_id) for m in messages)


async def test_success_history_entry_has_the_recorded_shape(sim, session, http):
    prompt_id, _, _ = await run_recorded(sim, session, http, "success")
    history = (await http.get(f"/history/{prompt_id}")).json()
    recorded = load_fixture("success.history")
    assert key_shape(list(history.values())[0]) == key_shape(list(recorded.values())[0])
    entry = history[prompt_id]
    assert entry["prompt"][0] == 0 and entry["prompt"][4] == ["3"]
    assert entry["prompt"][3]["client_id"] == CLIENT and "extra_pnginfo" in entry["prompt"][3]
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert entry["meta"]["3"]["display_node"] == "3"


async def test_output_png_carries_prompt_and_workflow(sim, session, http):
    prompt_id, _, _ = await run_recorded(sim, session, http, "success")
    image = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]["outputs"]["3"]["images"][0]
    assert image == {"filename": "probe_00001_.png", "subfolder": "", "type": "output"}
    response = await http.get("/view", params=image)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'filename="probe_00001_.png"'
    chunks = png_text_chunks(response.content)
    prompt, extra = recorded_prompt("success")
    assert set(chunks) == {"prompt", "workflow"}
    assert chunks["workflow"] == extra["extra_pnginfo"]["workflow"]
    assert chunks["prompt"]["2"]["class_type"] == "SlowSteps"


def png_text_chunks(data: bytes) -> dict:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    out, i = {}, 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        kind, body = data[i + 4:i + 8], data[i + 8:i + 8 + length]
        if kind == b"tEXt":
            key, _, value = body.partition(b"\x00")
            out[key.decode()] = json.loads(value)
        i += 12 + length
    return out


async def test_same_prompt_again_is_cached_like_the_recording(sim, session, http):
    await run_recorded(sim, session, http, "success")
    _, messages, _ = await run_recorded(sim, session, http, "cached")
    assert [m["type"] for m in messages] == recorded_types("cached")
    for mine, theirs in zip(messages, recorded_messages("cached")):
        assert key_shape(mine) == key_shape(theirs), mine["type"]
    cached = next(m for m in messages if m["type"] == "execution_cached")
    assert cached["data"]["nodes"] == ["1", "2", "3"]


async def test_node_exception_matches_the_recorded_error(sim, session, http):
    await run_recorded(sim, session, http, "success")
    prompt_id, messages, _ = await run_recorded(sim, session, http, "exec_error")
    recorded = recorded_messages("exec_error")
    assert [m["type"] for m in messages[:len(recorded)]] == [m["type"] for m in recorded]
    # After the error the server still marks the prompt finished.
    assert [m["type"] for m in messages[len(recorded):]] == ["status", "executing"]
    error = messages[len(recorded) - 1]["data"]
    theirs = recorded[-1]["data"]
    assert set(error) == set(theirs)
    assert error["exception_message"] == theirs["exception_message"]
    assert error["traceback"] == theirs["traceback"]
    assert (error["node_id"], error["node_type"], error["executed"]) == ("4", "Boom", ["2"])
    entry = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert entry["outputs"] == {} and entry["meta"] == {}
    assert entry["status"]["messages"][-1] == ["execution_error", error]


async def test_forced_failure_of_any_class(sim, session, http):
    sim.fail_class("SaveImage", "disk full")
    prompt, extra = recorded_prompt("success")
    async with WsRecorder(session, sim.url, CLIENT) as ws:
        prompt_id = await submit(http, prompt, extra)
        messages = await ws.wait_for_end(prompt_id)
    error = next(m["data"] for m in messages if m["type"] == "execution_error")
    assert error["node_type"] == "SaveImage" and error["exception_message"] == "disk full\n"
    sim.clear_failures()


async def test_no_previews_unless_the_prompt_asks(sim, session, http):
    # A real 0.8.0 started without --preview-method sends none (latent_preview.py).
    _, _, binaries = await run_recorded(sim, session, http, "success")
    assert binaries == []


async def test_previews_are_jpeg_binary_frames_in_comfy_layout(sim, session, http):
    prompt, extra = recorded_prompt("success")
    async with WsRecorder(session, sim.url, CLIENT) as ws:
        prompt_id = await submit(http, prompt, {**extra, "preview_method": "auto"})
        await ws.wait_for_end(prompt_id)
        binaries = ws.binaries()
    assert binaries
    event, image_type = struct.unpack(">II", binaries[0][:8])
    assert (event, image_type) == (1, 1)
    assert binaries[0][8:].startswith(b"\xff\xd8")


async def test_previews_carry_metadata_for_clients_that_ask(sim, session, http):
    prompt, extra = recorded_prompt("success")
    extra = {**extra, "preview_method": "latent2rgb"}
    async with WsRecorder(session, sim.url, CLIENT) as ws:
        await ws.ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
        await wait_until(lambda: "feature_flags" in ws.types(), "the server's feature flags")
        prompt_id = await submit(http, prompt, extra)
        await ws.wait_for_end(prompt_id)
        frame = ws.binaries()[0]
    event, meta_length = struct.unpack(">II", frame[:8])
    assert event == 4
    meta = json.loads(frame[8:8 + meta_length])
    assert meta["node_id"] == "2" and meta["prompt_id"] == prompt_id and meta["image_type"] == "image/jpeg"
    assert frame[8 + meta_length:].startswith(b"\xff\xd8")


async def test_messages_go_to_the_submitting_client_only(sim, session, http):
    prompt, extra = recorded_prompt("success")
    async with WsRecorder(session, sim.url, CLIENT) as mine, WsRecorder(session, sim.url, "someone-else") as other:
        prompt_id = await submit(http, prompt, extra)
        await mine.wait_for_end(prompt_id)
        await sim.hub.flush()
        assert set(other.types()) == {"status"}


async def test_interrupt_stops_the_running_prompt(sim, session, http):
    await run_recorded(sim, session, http, "success")  # as recorded: the EmptyImage is cached
    sim.knobs.step_delay = 0.01
    prompt, _ = recorded_prompt("interrupted")
    async with WsRecorder(session, sim.url, CLIENT) as ws:
        prompt_id = await submit(http, prompt)
        await wait_until(lambda: "progress" in ws.types(), "sampling to start")
        assert (await http.post("/interrupt", json={"prompt_id": "not-running"})).status_code == 200
        assert (await http.post("/interrupt")).status_code == 200
        messages = await ws.wait_for_end(prompt_id)
    types = [m["type"] for m in messages]
    assert types[:7] == recorded_types("interrupted")[:7]
    assert types[-3:] == ["execution_interrupted", "status", "executing"]
    interrupted = messages[-3]["data"]
    assert set(interrupted) == set(recorded_messages("interrupted")[-1]["data"])
    assert (interrupted["node_id"], interrupted["node_type"], interrupted["executed"]) == ("2", "SlowSteps", [])
    entry = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]
    recorded = next(iter(load_fixture("interrupted.history").values()))
    assert key_shape(entry) == key_shape(recorded)


async def test_busy_queue_delete_and_front(sim, session, http):
    sim.knobs.step_delay = 0.01
    prompt, _ = recorded_prompt("interrupted")
    async with WsRecorder(session, sim.url, CLIENT) as ws:
        running_id = await submit(http, prompt)
        await wait_until(lambda: "progress" in ws.types(), "sampling to start")
        small = {**prompt, "2": {**prompt["2"], "inputs": {**prompt["2"]["inputs"], "steps": 1}}}
        later = await submit(http, small)
        first = await submit(http, small, front=True)
        queue = (await http.get("/queue")).json()
        recorded = load_fixture("interrupted.during")["queue_busy"]
        assert key_shape(queue) == key_shape(recorded)
        assert [item[1] for item in queue["queue_running"]] == [running_id]
        assert [item[1] for item in queue["queue_pending"]] == [first, later]
        assert queue["queue_pending"][0][0] < 0
        assert (await http.get("/prompt")).json() == {"exec_info": {"queue_remaining": 3}}
        assert (await http.post("/queue", json={"delete": [later]})).status_code == 200
        assert [i[1] for i in (await http.get("/queue")).json()["queue_pending"]] == [first]
        assert (await http.post("/queue", json={"clear": True})).status_code == 200
        assert (await http.get("/queue")).json()["queue_pending"] == []
        await http.post("/interrupt")
        await ws.wait_for_end(running_id)
    assert (await http.get("/queue")).json() == load_fixture("queue_idle")["body"]


async def test_history_listing_limits_and_deletes(sim, session, http):
    ids = []
    for name in ("success", "exec_error", "success"):
        prompt_id, _, _ = await run_recorded(sim, session, http, name)
        ids.append(prompt_id)
    assert list((await http.get("/history")).json()) == ids
    assert list((await http.get("/history", params={"max_items": 2})).json()) == ids[1:]
    await http.post("/history", json={"delete": [ids[0]]})
    assert list((await http.get("/history")).json()) == ids[1:]
    assert (await http.get(f"/history/{ids[0]}")).json() == {}
    await http.post("/history", json={"clear": True})
    assert (await http.get("/history")).json() == {}


async def test_history_is_bounded(sim):
    from pistachio_tui.sim.prompt_queue import MAX_HISTORY

    for n in range(MAX_HISTORY):
        sim.queue.history[f"old{n}"] = {}
    prompt, _ = recorded_prompt("success")
    sim.queue.put(0, "newest", prompt, {}, ["3"])
    await wait_until(lambda: "newest" in sim.queue.history, "the worker to finish the prompt")
    assert len(sim.queue.history) == MAX_HISTORY
    assert "old0" not in sim.queue.history


async def test_free_clears_the_cache(sim, session, http):
    await run_recorded(sim, session, http, "success")
    assert (await http.post("/free", json={"unload_models": True, "free_memory": True})).status_code == 200
    _, messages, _ = await run_recorded(sim, session, http, "cached")
    assert next(m for m in messages if m["type"] == "execution_cached")["data"]["nodes"] == []


async def test_reconnecting_client_is_told_the_running_node(sim, session, http):
    sim.knobs.step_delay = 0.01
    prompt, _ = recorded_prompt("interrupted")
    async with WsRecorder(session, sim.url, CLIENT) as ws:
        prompt_id = await submit(http, prompt)
        await wait_until(lambda: "progress" in ws.types(), "sampling to start")
    async with WsRecorder(session, sim.url, CLIENT) as again:
        await wait_until(lambda: len(again.texts()) >= 2, "the running node")
        assert again.texts()[1] == {"type": "executing", "data": {"node": "2"}}
        await http.post("/interrupt")
        await again.wait_for_end(prompt_id)


def test_execution_order_puts_inputs_first():
    prompt = {
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "3": {"class_type": "KSampler", "inputs": {"model": ["4", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {}},
        "6": {"class_type": "Unused", "inputs": {}},
    }
    assert execution_order(prompt, ["9"]) == ["4", "5", "3", "8", "9"]


async def test_demo_workflow_runs_with_default_models(sim, session, http):
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly-fp16.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a pistachio", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 2}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 1, "steps": 4, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}},
    }
    async with WsRecorder(session, sim.url, CLIENT) as ws:
        prompt_id = await submit(http, prompt)
        messages = await ws.wait_for_end(prompt_id)
    progress = [m["data"] for m in messages if m["type"] == "progress"]
    assert [p["value"] for p in progress] == [1, 2, 3, 4] and {p["node"] for p in progress} == {"3"}
    images = next(m for m in messages if m["type"] == "executed")["data"]["output"]["images"]
    assert len(images) == 2 and all(i["type"] == "temp" for i in images)
    assert (await http.get("/view", params=images[0])).status_code == 200


async def test_a_simulator_fault_in_one_prompt_does_not_wedge_the_queue(sim, session, http, monkeypatch):
    from pistachio_tui.sim import executor

    calls = []

    async def broken_run(self, item):
        calls.append(item.prompt_id)
        raise RuntimeError("bug")

    monkeypatch.setattr(executor.Executor, "run", broken_run)
    prompt, _ = recorded_prompt("success")
    prompt_id = await submit(http, prompt)
    entry = await wait_until(lambda: sim.queue.history.get(prompt_id), "the failed prompt's history")
    assert entry["status"]["status_str"] == "error"
    assert sim.queue.remaining() == 0 and calls == [prompt_id]


async def test_a_prompt_without_client_id_broadcasts_only_progress_and_interrupts(sim, session, http):
    # ComfyUI 0.8.0: add_message(broadcast=False) and "if server.client_id is not None" for the rest.
    prompt, _ = recorded_prompt("success")
    async with WsRecorder(session, sim.url, "watcher") as ws:
        response = await http.post("/prompt", json={"prompt": prompt, "extra_data": {"preview_method": "auto"}})
        prompt_id = response.json()["prompt_id"]
        await wait_until(lambda: prompt_id in sim.queue.history, "the prompt to finish")
        await sim.hub.flush()
        kinds = set(ws.types())
        binaries = ws.binaries()
    assert kinds == {"status", "progress", "progress_state"}
    assert binaries and struct.unpack(">I", binaries[0][:4]) == (1,)


@pytest.mark.parametrize(("body", "status", "stops", "logged"), [
    ({"prompt_id": "someone-elses"}, 200, False, "is not currently running, skipping interrupt"),
    ({"prompt_id": ""}, 200, True, "Global interrupt (no prompt_id specified)"),
    (b"not json", 200, True, "Global interrupt"),
    ([], 500, False, None),
    (None, 500, False, None),
], ids=["other-prompt", "empty-id", "not-json", "array", "null"])
async def test_interrupt_answers_as_server_py_does(sim, session, http, body, status, stops, logged):
    """0.8.0's post_interrupt: a prompt_id stops that prompt only if it runs; no prompt_id (or
    a body that is not JSON) stops whatever runs; JSON that is not an object fails on
    ``.get`` with a 500. Batches rely on the first: cancelling one job must not stop
    another client's prompt."""
    sim.knobs.step_delay = 0.01
    prompt, _ = recorded_prompt("interrupted")
    async with WsRecorder(session, sim.url, CLIENT) as ws:
        prompt_id = await submit(http, prompt)
        await wait_until(lambda: "progress" in ws.types(), "sampling to start")
        if isinstance(body, bytes):
            answer = await http.post("/interrupt", content=body)
        else:
            answer = await http.post("/interrupt", content=json.dumps(body))
        assert answer.status_code == status
        if not stops:
            await asyncio.sleep(0.1)
            assert sim.queue.running is not None and sim.queue.running.prompt_id == prompt_id
            await http.post("/interrupt", json={"prompt_id": prompt_id})
        messages = await ws.wait_for_end(prompt_id)
    assert messages[-3]["type"] == "execution_interrupted"
    if logged:
        assert any(logged in entry["m"] for entry in sim.log.entries)
