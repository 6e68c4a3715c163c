"""A ComfyUI server as a batch target, against the simulator: cancelling a batch takes its own
prompts off the server and leaves other clients' prompts alone."""

from __future__ import annotations

import asyncio
import copy

import pytest

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.fleet.comfy_target import ComfyTarget
from tests.sim.sim_helpers import recorded_prompt, wait_until


def slow() -> dict:
    """The recorded interrupt run's prompt (SlowSteps), made unique so nothing is cached."""
    prompt = copy.deepcopy(recorded_prompt("interrupted")[0])
    prompt["1"]["inputs"]["color"] = id(prompt) % 0xFFFFFF
    return prompt


@pytest.fixture
async def busy_sim(sim):
    sim.knobs.step_delay = 0.05
    async with ComfyClient(sim.url) as other:
        yield sim, other


async def test_cancelling_a_queued_batch_job_does_not_stop_another_clients_prompt(busy_sim):
    """The batch's prompt waits behind another client's: cancel sent a bare POST /interrupt,
    which ComfyUI applies to whatever runs, and stopped the other client's prompt."""
    sim, other = busy_sim
    theirs = (await other.submit(slow())).prompt_id
    await wait_until(lambda: sim.queue.running is not None, "their prompt to run")
    target = ComfyTarget(ComfyClient(sim.url), slots=1, poll_interval=0.02)
    job = asyncio.create_task(target.run(slow()))
    try:
        await wait_until(lambda: len(sim.queue.pending) == 1, "the batch's prompt to be queued")
        await target.cancel()
        assert sim.queue.pending == []
        await asyncio.sleep(0.2)
        assert sim.queue.running is not None and sim.queue.running.prompt_id == theirs
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        await target.aclose()
    await other.interrupt(theirs)


async def test_cancelling_a_running_batch_job_stops_it_and_only_it(busy_sim):
    sim, other = busy_sim
    target = ComfyTarget(ComfyClient(sim.url), slots=1, poll_interval=0.02)
    job = asyncio.create_task(target.run(slow()))
    try:
        await wait_until(lambda: sim.queue.running is not None, "the batch's prompt to run")
        ours = sim.queue.running.prompt_id
        theirs = (await other.submit(slow())).prompt_id
        await target.cancel()
        entry = await wait_until(lambda: other.history(ours), "the batch's prompt to end")
        assert entry[ours].outcome == "interrupted"
        await wait_until(lambda: sim.queue.running is not None and sim.queue.running.prompt_id == theirs,
                         "their prompt to run next")
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        await target.aclose()
    await other.interrupt(theirs)
