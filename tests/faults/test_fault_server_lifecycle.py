"""A server that dies, comes back or restarts mid-prompt, and websockets that keep dropping:
after reconnect and resync the tracker ends exactly where the server's history says."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.helpers import Follower, assert_matches_history, never_decreases, slow_prompt, wait_until


@pytest.fixture
def slow(sim):
    # Long enough to cut in the middle of the sampler, short enough for a fast suite.
    sim.knobs.step_delay = 0.004
    return sim


async def history_entry(follower: Follower, prompt_id: str):
    entries = await follower.client.history(prompt_id)
    return entries[prompt_id]


@pytest.mark.parametrize("finish_while_down", [True, False], ids=["finishes-while-down", "still-running-after"])
async def test_killed_mid_prompt_then_revived(slow, finish_while_down):
    sim = slow
    async with Follower(sim.url) as follower:
        prompt_id = await follower.submit(slow_prompt(150))
        await wait_until(lambda: follower.state(prompt_id).value >= 20, "sampling to be under way")
        await sim.kill()
        await wait_until(lambda: follower.disconnects, "the client to notice the server is gone")
        if finish_while_down:
            await wait_until(lambda: prompt_id in sim.queue.history, "the prompt to finish server-side")
        else:
            assert prompt_id not in sim.queue.history
        await sim.revive()
        state = await follower.wait_finished(prompt_id)
        entry = await history_entry(follower, prompt_id)
    assert follower.resyncs, "a reconnect must be followed by a resync"
    assert_matches_history(state, entry)
    assert state.status == "success" and [o.filename for o in state.outputs]
    assert never_decreases(follower.fractions[prompt_id])


async def test_websocket_dropped_every_200ms_during_a_long_run(slow):
    sim = slow
    async with Follower(sim.url) as follower:
        prompt_ids = [await follower.submit(slow_prompt(120, color=c)) for c in (1, 2, 3)]

        async def keep_dropping():
            while True:
                await asyncio.sleep(0.2)
                sim.drop_websockets()

        dropper = asyncio.create_task(keep_dropping())
        try:
            states = [await follower.wait_finished(p) for p in prompt_ids]
        finally:
            dropper.cancel()
        entries = [await history_entry(follower, p) for p in prompt_ids]
    assert len(follower.disconnects) >= 3
    for prompt_id, state, entry in zip(prompt_ids, states, entries):
        assert_matches_history(state, entry)
        assert state.status == "success"
        series = follower.fractions[prompt_id]
        assert never_decreases(series), series
        assert series[-1] == 1.0


async def test_restart_mid_prompt_then_a_new_prompt_runs_exactly(slow):
    sim = slow
    async with Follower(sim.url) as follower:
        lost = await follower.submit(slow_prompt(150))
        await wait_until(lambda: follower.state(lost).value >= 10, "sampling to be under way")
        await sim.restart(0.05)
        await wait_until(lambda: follower.resyncs, "the resync after the restart")
        assert lost not in follower.resyncs[-1].finished
        assert follower.resyncs[-1].queue.running == []
        fresh = await follower.submit(slow_prompt(30, color=7))
        state = await follower.wait_finished(fresh)
        entry = await history_entry(follower, fresh)
        assert list((await follower.client.history()).keys()) == [fresh]
    assert_matches_history(state, entry)
    assert never_decreases(follower.fractions[lost])


async def test_restart_ends_the_prompt_it_lost(slow):
    sim = slow
    async with Follower(sim.url) as follower:
        lost = await follower.submit(slow_prompt(150))
        await wait_until(lambda: follower.state(lost).value >= 10, "sampling to be under way")
        await sim.restart(0.05)
        await wait_until(lambda: follower.resyncs, "the resync after the restart")
        assert follower.state(lost).status != "running"


async def test_prompt_that_fails_while_the_client_is_cut_off(slow):
    sim = slow
    sim.fail_class("SaveImage", "disk quota exceeded in output/")
    async with Follower(sim.url) as follower:
        prompt_id = await follower.submit(slow_prompt(100))
        await wait_until(lambda: follower.state(prompt_id).value >= 10, "sampling to be under way")
        await sim.kill()
        await wait_until(lambda: prompt_id in sim.queue.history, "the prompt to fail server-side")
        await sim.revive()
        state = await follower.wait_finished(prompt_id)
        entry = await history_entry(follower, prompt_id)
    assert_matches_history(state, entry)
    assert state.status == "error"
    assert (state.error.node_id, state.error.node_type) == ("3", "SaveImage")
    assert state.error.exception_message == "disk quota exceeded in output/"
