"""Garbled websocket frames (mutated recorded messages, random bytes): ``parse_message``
never raises, and a tracker fed the result keeps its progress monotonic."""

from __future__ import annotations

import json
import random

import pytest

from pistachio_tui.comfy.events import parse_message
from pistachio_tui.comfy.tracker import PromptTracker
from tests.conftest import load_fixture
from tests.faults.generators import json_value, mutate

TRACES = ["success", "cached", "exec_error", "interrupted"]
CASES = 5_000


#: A fresh prompt every this many frames, so most frames hit a prompt that has not ended.
PROMPT_EVERY = 40


def recorded_frames() -> list[str]:
    """Every recorded message, its prompt id replaced by ``{pid}``."""
    ids = [next(iter(load_fixture(f"{name}.history"))) for name in TRACES]
    frames = []
    for name in TRACES:
        for record in load_fixture(f"{name}.ws_trace"):
            text = json.dumps(record["msg"])
            for prompt_id in ids:
                text = text.replace(prompt_id, "{pid}")
            frames.append(text)
    return frames


def graft_data(rng: random.Random, frame: str) -> str:
    """A recorded message with one of its data fields replaced by a random value."""
    message = json.loads(frame)
    data = message.get("data")
    if isinstance(data, dict) and data:
        data[rng.choice(list(data))] = json_value(rng)
    return json.dumps(message)


def test_garbled_frames_never_raise_and_progress_never_goes_back():
    rng = random.Random(7)
    frames = recorded_frames()
    prompt = next(iter(load_fixture("success.history").values()))["prompt"][2]
    tracker = PromptTracker()
    running = 0
    for number in range(CASES):
        if number % PROMPT_EVERY == 0:
            pid = f"fuzz-{number}"
            state = tracker.track(pid, prompt)
            last = 0.0
        source = rng.choice(frames).replace("{pid}", pid)
        kind = rng.random()
        if kind < 0.5:
            frame: str | bytes = graft_data(rng, source)
        elif kind < 0.6:
            frame = source
        elif kind < 0.85:
            frame = mutate(rng, source.encode()).decode("utf-8", "replace")
        else:
            frame = rng.randbytes(rng.randint(0, 24))
        try:
            event = parse_message(frame)
            tracker.feed(event)
        except Exception as exc:  # noqa: BLE001 - what escapes is the finding
            raise AssertionError(f"case {number} ({frame!r:.120}) raised {type(exc).__name__}: {exc}") from exc
        assert state.fraction >= last, f"case {number}: progress went from {last} to {state.fraction}"
        assert 0.0 <= state.fraction <= 1.0
        last = state.fraction
        running += state.status == "running"
    # Most frames must have reached a live prompt, or this explores nothing.
    assert running > CASES // 4, running


@pytest.mark.parametrize("frame", [
    '{"type": "progress", "data": {"value": 1, "max": Infinity, "prompt_id": "p", "node": "2"}}',
    '{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": Infinity}}}}',
], ids=["progress", "status"])
def test_infinite_progress_values_are_not_fatal(frame):
    parse_message(frame)
