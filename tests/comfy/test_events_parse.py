"""parse_message on every recorded websocket message and on binary preview frames."""

from __future__ import annotations

import json
import struct

import pytest

from pistachio_tui.comfy.events import (
    Executed,
    Executing,
    ExecutionCached,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    NodeProgress,
    PreviewImage,
    Progress,
    ProgressState,
    Status,
    Unknown,
    parse_message,
)
from tests.conftest import FIXTURES_DIR, load_fixture

TRACES = ["success", "cached", "exec_error", "interrupted"]
EXPECTED_TYPES = {
    "status": Status, "execution_start": ExecutionStart, "execution_cached": ExecutionCached,
    "executing": Executing, "progress": Progress, "progress_state": ProgressState, "executed": Executed,
    "execution_success": ExecutionSuccess, "execution_error": ExecutionError,
    "execution_interrupted": ExecutionInterrupted,
}


@pytest.mark.parametrize("name", TRACES)
def test_every_recorded_message_has_a_type(name):
    for record in load_fixture(f"{name}.ws_trace"):
        event = parse_message(json.dumps(record["msg"]))
        assert type(event) is EXPECTED_TYPES[record["msg"]["type"]], record


def test_first_status_carries_the_session_id():
    first = parse_message(json.dumps(load_fixture("success.ws_trace")[0]["msg"]))
    assert first == Status(queue_remaining=0, sid="5f91ddd5-5a8b-4fad-9eca-0868b3d152f4")
    later = parse_message(json.dumps(load_fixture("success.ws_trace")[1]["msg"]))
    assert later == Status(queue_remaining=1, sid=None)


def test_success_trace_fields():
    events = [parse_message(json.dumps(r["msg"])) for r in load_fixture("success.ws_trace")]
    pid = "09bcf2fc-d848-487a-9010-c6524bb0244f"
    start = next(e for e in events if isinstance(e, ExecutionStart))
    assert start == ExecutionStart(pid, 1795365131.240)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.value for p in progress] == list(range(1, 21)) and {p.max for p in progress} == {20}
    assert {p.node for p in progress} == {"2"}
    executed = next(e for e in events if isinstance(e, Executed))
    assert [f.filename for f in executed.files] == ["probe_00002_.png"]
    last_state = [e for e in events if isinstance(e, ProgressState)][-1]
    assert set(last_state.nodes) == {"1", "2", "3"}
    assert last_state.nodes["2"].value == 20 and last_state.nodes["2"].state == "finished"
    assert last_state.nodes["2"].real_node_id == "2" and last_state.nodes["2"].parent_node_id is None
    assert events[-1] == Executing(pid, None, None)


def test_execution_error_fields():
    record = load_fixture("exec_error.ws_trace")[-1]["msg"]
    error = parse_message(json.dumps(record))
    assert isinstance(error, ExecutionError)
    assert (error.node_id, error.node_type, error.exception_type) == ("4", "Boom", "RuntimeError")
    assert error.exception_message == "probe failure: boom"
    assert error.executed == ["2"] and error.current_outputs == ["2", "1", "4", "3"]
    assert 'raise RuntimeError("probe failure: boom")' in error.traceback[-1]


def test_execution_interrupted_fields():
    record = load_fixture("interrupted.ws_trace")[-1]["msg"]
    assert parse_message(json.dumps(record)) == ExecutionInterrupted(
        "bb404235-9966-430e-9207-9f905f3fa763", "2", "SlowSteps", [], 1795365134.277)


def test_manager_task_messages_are_kept_as_unknown():
    for name in ("manager_install_model", "manager_install_pack_offline"):
        for record in load_fixture(name)["ws_trace"]:
            event = parse_message(json.dumps(record["msg"]))
            if record["msg"]["type"].startswith("cm-"):
                assert event == Unknown(record["msg"]["type"], record["msg"]["data"])


@pytest.mark.parametrize(("code", "kind"), [(1, "jpeg"), (2, "png")])
def test_binary_preview_frame(code, kind):
    image = (FIXTURES_DIR / "success_output.png").read_bytes()
    event = parse_message(struct.pack(">II", 1, code) + image)
    assert event == PreviewImage(kind, image)


def test_other_binary_frames_are_unknown():
    assert parse_message(struct.pack(">I", 3) + b"text") == Unknown("binary-3", b"text")
    assert parse_message(b"\x00") == Unknown("binary", b"\x00")


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"data": {}}'])
def test_garbage_text_is_unknown(raw):
    assert parse_message(raw).type == "invalid"


def test_known_type_with_wrong_shape_is_unknown():
    event = parse_message(json.dumps({"type": "progress", "data": {"value": "x"}}))
    assert event == Unknown("progress", {"value": "x"})


def test_python_json_extensions_still_parse():
    # ComfyUI encodes with Python's json, which writes NaN and Infinity (a custom node's float
    # output) where strict JSON decoders refuse the whole message.
    raw = json.dumps({"type": "executed", "data": {"prompt_id": "p", "node": "9", "display_node": "9",
                                                   "output": {"score": [float("nan"), float("inf")]}}})
    event = parse_message(raw)
    assert isinstance(event, Executed)
    assert event.output["score"][1] == float("inf")


def test_progress_state_nodes_keep_their_fields():
    raw = json.dumps({"type": "progress_state", "data": {"prompt_id": "p", "nodes": {
        "7": {"value": 3, "max": 20, "state": "running", "node_id": 7, "display_node_id": "7",
              "parent_node_id": None, "real_node_id": 7}}}})
    [(key, node)] = parse_message(raw).nodes.items()
    assert key == "7"
    assert node == NodeProgress("7", 3.0, 20.0, "running", "7", None, "7")
    assert (node.value, node.max, node.state, node.parent_node_id) == (3.0, 20.0, "running", None)


def test_progress_state_with_nodes_that_are_not_objects_is_unknown():
    data = {"prompt_id": "p", "nodes": {"7": "running"}}
    assert parse_message(json.dumps({"type": "progress_state", "data": data})) == Unknown("progress_state", data)


def test_progress_state_leaves_out_a_node_it_cannot_read_and_keeps_the_rest():
    raw = json.dumps({"type": "progress_state", "data": {"prompt_id": "p", "nodes": {
        "1": {"value": "x", "max": 1, "state": "finished"}, "2": {"value": 1, "max": 2, "state": "running"}}}})
    event = parse_message(raw)
    assert isinstance(event, ProgressState)
    assert list(event.nodes) == ["2"]
    # Which nodes finished is read from the state alone.
    assert event.finished_nodes() == ["1"]
