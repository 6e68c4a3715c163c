"""it/s and ETA come from at least a second of progress and cover every sampler still to run."""

from __future__ import annotations

import pytest

from pistachio_tui.comfy.events import Executing, ExecutionStart, Progress
from pistachio_tui.comfy.tracker import RATE_WINDOW_S, PromptTracker, sampler_steps

#: Two samplers (30 and 10 steps) and a websocket save node that ticks twice in a blink.
PROMPT = {
    "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "2": {"class_type": "KSampler", "inputs": {"steps": 30, "latent_image": ["1", 0]}},
    "3": {"class_type": "KSamplerAdvanced", "inputs": {"steps": 20, "start_at_step": 10, "end_at_step": 10000,
                                                       "latent_image": ["2", 0]}},
    "4": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["3", 0]}},
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def started() -> tuple[PromptTracker, Clock]:
    clock = Clock()
    tracker = PromptTracker(clock=clock)
    tracker.track("p", PROMPT, ["4"])
    tracker.feed(ExecutionStart("p"))
    tracker.feed(Executing("p", "1"))
    tracker.feed(Executing("p", "2"))
    return tracker, clock


def test_sampler_steps_reads_steps_and_the_advanced_range():
    assert [sampler_steps(PROMPT[n]["inputs"]) for n in "1234"] == [0, 30, 10, 0]
    assert sampler_steps({"steps": True}) == 0


def test_no_rate_until_a_full_window_of_progress():
    tracker, clock = started()
    for step in range(1, 6):  # 0.5 s of steps at 10 it/s
        clock.now += 0.1
        state = tracker.feed(Progress("p", "2", step, 30))
    assert state.it_per_s is None and state.eta_s is None
    for step in range(6, 13):
        clock.now += 0.1
        state = tracker.feed(Progress("p", "2", step, 30))
    assert state.it_per_s == pytest.approx(10)
    # ETA: 18 steps of this sampler and the 10 the advanced sampler will run.
    assert state.eta_s == pytest.approx((18 + 10) / 10)


def steps_then_a_burst(tracker, clock):
    """Twelve steps at 10 it/s; then a proxy that held ten steps (1 s of work) delivers them at
    once after a 3 s stall. The state after the burst's last step."""
    for step in range(1, 13):
        clock.now += 0.1
        tracker.feed(Progress("p", "2", step, 30))
    clock.now += 3.0
    for step in range(13, 23):
        state = tracker.feed(Progress("p", "2", step, 30))
    return state


def test_a_burst_of_buffered_frames_does_not_make_a_huge_rate():
    tracker, clock = started()
    state = steps_then_a_burst(tracker, clock)
    assert state.it_per_s < 10
    assert state.it_per_s > 1


def test_two_quick_ticks_of_a_fast_node_show_no_rate():
    tracker, clock = started()
    tracker.feed(Executing("p", "4"))
    clock.now += 0.0001
    tracker.feed(Progress("p", "4", 1, 2))
    clock.now += 0.0001
    state = tracker.feed(Progress("p", "4", 2, 2))
    # A real SaveImageWebsocket reported 58,885 it/s this way.
    assert state.it_per_s is None


def test_the_rate_is_measured_over_the_newest_seconds():
    tracker, clock = started()
    for step in range(1, 21):  # 2 s at 10 it/s, then the sampler slows to 2 it/s
        clock.now += 0.1
        tracker.feed(Progress("p", "2", step, 30))
    for step in range(21, 27):
        clock.now += 0.5
        state = tracker.feed(Progress("p", "2", step, 30))
    assert state.it_per_s == pytest.approx(2, rel=0.05)
    assert clock.now - 100 > RATE_WINDOW_S


def test_fraction_weighs_nodes_by_their_steps():
    tracker, clock = started()
    clock.now += 1
    state = tracker.feed(Progress("p", "2", 15, 30))
    # Weights: 1 (latent) + 30 + 10 + 1 (save); the latent node and half the first sampler are done.
    assert state.fraction == pytest.approx((1 + 15) / (1 + 30 + 10 + 1))


def test_a_flood_of_steps_keeps_few_samples_and_the_right_rate():
    tracker, clock = started()
    flood = 10_000  # steps a second for 3 s: each step used to walk every sample of the last second
    for step in range(1, 3 * flood + 1):
        clock.now += 1 / flood
        state = tracker.feed(Progress("p", "2", step, 10**9))
    assert state.it_per_s == pytest.approx(flood, rel=0.01)
    kept = len(tracker._prompts["p"].samples)  # noqa: SLF001 - the bound is the point of the test
    assert kept <= 20 + 2


def test_a_burst_after_a_stall_is_a_base_of_its_own():
    tracker, clock = started()
    steps_then_a_burst(tracker, clock)
    clock.now += 1.0
    state = tracker.feed(Progress("p", "2", 23, 30))
    # Measured from the burst's last step, not its first: one step in the last second.
    assert state.it_per_s == pytest.approx(1.0)


def test_a_progress_state_that_repeats_what_is_known_changes_nothing():
    from pistachio_tui.comfy.events import ProgressState

    tracker, clock = started()
    latent = {"node_id": "1", "value": 1.0, "max": 1.0, "state": "finished"}
    sampler = {"node_id": "2", "value": 3.0, "max": 30.0, "state": "running"}
    # Node 1 is already done (node 2 started after it): a sampler's per-step report tells nothing new.
    assert tracker.feed(ProgressState("p", {"1": latent, "2": sampler})) is None
    state = tracker.feed(ProgressState("p", {"1": latent, "2": {**sampler, "value": 30.0, "state": "finished"}}))
    assert state is not None and state.done_nodes == ["1", "2"]
