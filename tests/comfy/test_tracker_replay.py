"""Replay the recorded traces into PromptTracker: it ends where the real server said it ended."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pistachio_tui.comfy.events import (
    Executing,
    ExecutionStart,
    Progress,
    Resynced,
    parse_message,
)
from pistachio_tui.comfy.tracker import PromptTracker, nodes_to_execute
from pistachio_tui.comfy.types import HistoryEntry, QueueState
from tests.conftest import load_fixture

TRACES = ["success", "cached", "exec_error", "interrupted"]


def recorded(name: str) -> tuple[HistoryEntry, list[tuple[float, object]]]:
    [(prompt_id, data)] = load_fixture(f"{name}.history").items()
    events = [(r["t"], parse_message(json.dumps(r["msg"]))) for r in load_fixture(f"{name}.ws_trace")]
    return HistoryEntry.from_wire(prompt_id, data), events


class Replay:
    """A tracker whose clock is the trace's own time."""

    def __init__(self, entry: HistoryEntry) -> None:
        self.now = 0.0
        self.tracker = PromptTracker(clock=lambda: self.now)
        self.tracker.track(entry.prompt_id, entry.prompt, entry.outputs_to_execute)

    def feed(self, events):
        for t, event in events:
            self.now = t
            self.tracker.feed(event)


def replay(name: str):
    entry, events = recorded(name)
    run = Replay(entry)
    run.feed(events)
    return entry, run.tracker.get(entry.prompt_id)


def test_success_ends_with_the_saved_image():
    entry, state = replay("success")
    assert state.status == "success" and state.fraction == 1.0
    assert state.outputs == entry.outputs
    assert [o.filename for o in state.outputs] == ["probe_00002_.png"]
    assert state.started_at == entry.started_at and state.finished_at == entry.finished_at
    assert state.duration == pytest.approx(1.008)
    assert state.error is None and state.cached_nodes == []
    assert state.done_nodes == ["1", "2", "3"]
    # The rate belonged to the sampler node; the save node that came after has no steps.
    assert state.it_per_s is None


def test_cached_run_has_every_node_cached():
    entry, state = replay("cached")
    assert state.status == "success" and state.fraction == 1.0
    assert state.cached_nodes == ["1", "2", "3"] == entry.cached_nodes
    assert state.outputs == entry.outputs


def test_exec_error_names_node_and_exception():
    entry, state = replay("exec_error")
    assert state.status == "error"
    assert (state.error.node_id, state.error.node_type) == ("4", "Boom")
    assert state.error.exception_message == "probe failure: boom"
    assert state.error.exception_type == "RuntimeError"
    assert state.cached_nodes == ["1"] == entry.cached_nodes
    assert state.finished_at == entry.finished_at
    # Nodes 2 (3 steps), 3 and 4 had to run (1 was cached); only 2 finished. A node weighs its steps.
    assert state.fraction == pytest.approx(3 / (3 + 1 + 1))
    assert state.outputs == []


def test_interrupted_stops_in_the_slow_node():
    entry, state = replay("interrupted")
    assert state.status == "interrupted" and entry.outcome == "interrupted"
    assert (state.interrupted.node_id, state.interrupted.node_type) == ("2", "SlowSteps")
    assert state.current_title == "Slow Steps"
    assert (state.value, state.max) == (20, 400)
    assert state.fraction == pytest.approx(20 / (400 + 1))
    # 0.05 s per step in the recorded run: steps 1 to 20 span less than the 1 s rate window.
    assert state.it_per_s is None
    assert state.finished_at == entry.finished_at and state.error is None


def test_running_state_mid_trace_has_title_rate_and_eta():
    entry, events = recorded("success")
    run = Replay(entry)
    step = {e.value: i for i, (_, e) in enumerate(events) if isinstance(e, Progress)}
    run.feed(events[: step[10] + 1])
    state = run.tracker.get(entry.prompt_id)
    assert state.status == "running"
    assert (state.current_node, state.current_title) == ("2", "Slow Steps")
    assert (state.value, state.max) == (10, 20)
    # EmptyImage (weight 1) done, 10 of the sampler's 20 steps, SaveImage (1) to go.
    assert state.fraction == pytest.approx((1 + 10) / (1 + 20 + 1))
    # Half a second of steps is too short a window for a rate.
    assert state.it_per_s is None and state.eta_s is None


@pytest.mark.parametrize("name", TRACES)
def test_apply_history_reaches_the_same_final_state_as_the_events(name):
    entry, from_events = replay(name)
    tracker = PromptTracker()
    tracker.track(entry.prompt_id, entry.prompt, entry.outputs_to_execute)
    tracker.feed(ExecutionStart(entry.prompt_id, entry.started_at))
    from_history = tracker.apply_history(entry)
    for attr in ("status", "outputs", "cached_nodes", "started_at", "finished_at"):
        assert getattr(from_history, attr) == getattr(from_events, attr), attr
    assert from_history.error == from_events.error
    assert from_history.interrupted == from_events.interrupted
    if name in ("success", "cached"):
        assert from_history.fraction == 1.0


def test_resynced_event_finishes_tracked_prompts_and_later_events_are_stale():
    entry, events = recorded("success")
    run = Replay(entry)
    run.feed(events[:20])
    run.tracker.feed(Resynced(QueueState([], []), {entry.prompt_id: entry}))
    state = run.tracker.get(entry.prompt_id)
    assert state.status == "success" and state.outputs == entry.outputs
    assert run.tracker.feed(Progress(entry.prompt_id, "2", 1, 20)) is None
    assert state.fraction == 1.0


def test_untracked_prompts_are_ignored():
    tracker = PromptTracker()
    assert tracker.feed(Executing("other", "1")) is None
    assert tracker.get("other") is None


def test_finished_prompts_are_bounded():
    tracker = PromptTracker(max_finished=3)
    for i in range(10):
        tracker.track(f"p{i}", {})
        tracker.feed(Executing(f"p{i}", None))
    tracker.track("live", {})
    assert [s.prompt_id for s in tracker.states()] == ["p7", "p8", "p9", "live"]


def test_nodes_to_execute_follows_links_from_the_outputs():
    entry, _ = recorded("exec_error")
    assert nodes_to_execute(entry.prompt, ["3"]) == {"1", "2", "3", "4"}
    prompt = dict(entry.prompt, **{"9": {"class_type": "Unused", "inputs": {}}})
    assert nodes_to_execute(prompt, ["3"]) == {"1", "2", "3", "4"}
    assert nodes_to_execute(prompt, None) == {"1", "2", "3", "4", "9"}


TRACE_EVENTS = {name: recorded(name) for name in TRACES}


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(TRACES), data=st.data())
def test_fraction_is_monotone_and_bounded_for_any_prefix(name, data):
    entry, events = TRACE_EVENTS[name]
    length = data.draw(st.integers(0, len(events)))
    know_outputs = data.draw(st.booleans())
    run = Replay(entry)
    run.tracker = PromptTracker(clock=lambda: run.now)
    run.tracker.track(entry.prompt_id, entry.prompt, entry.outputs_to_execute if know_outputs else None)
    previous = 0.0
    for t, event in events[:length]:
        run.now = t
        run.tracker.feed(event)
        fraction = run.tracker.get(entry.prompt_id).fraction
        assert 0.0 <= fraction <= 1.0
        assert fraction >= previous
        previous = fraction


NODE_IDS = st.sampled_from(["1", "2", "3", "4", "99"])
PID = "80d07428-f430-42f6-a977-e0790b880ca8"
ANY_EVENT = st.one_of(
    st.builds(Executing, st.just(PID), st.one_of(st.none(), NODE_IDS)),
    st.builds(Progress, st.just(PID), NODE_IDS, st.integers(0, 50), st.integers(0, 50)),
    st.builds(ExecutionStart, st.just(PID), st.none()),
    st.sampled_from([e for _, e in TRACE_EVENTS["exec_error"][1]]),
)


@settings(max_examples=100, deadline=None)
@given(events=st.lists(st.tuples(st.floats(0, 100), ANY_EVENT), max_size=40))
def test_fraction_stays_monotone_and_bounded_for_events_in_any_order(events):
    entry, _ = TRACE_EVENTS["exec_error"]
    run = Replay(entry)
    previous = 0.0
    for t, event in events:
        run.now = t
        run.tracker.feed(event)
        state = run.tracker.get(PID)
        assert previous <= state.fraction <= 1.0
        assert state.eta_s is None or state.eta_s >= 0
        previous = state.fraction
