"""ServerSession against the simulator: health, live progress, finish, outage."""

from __future__ import annotations

import contextlib

from pistachio_tui.comfy.session import CONNECTED, DOWN, ServerSession, SessionManager, UpdateKind
from pistachio_tui.comfy.stream import Backoff
from pistachio_tui.config import ServerConfig
from pistachio_tui.sim.catalog import seed_workflows
from pistachio_tui.workflow.convert import load_prompt_for_run
from tests.polling import wait_for

from .helpers import fresh_prompt

FAST = Backoff(initial=0.05, cap=0.1, jitter=0)


def sim_prompt(sim) -> dict:
    return load_prompt_for_run(seed_workflows()["sim_txt2img.json"], sim.object_info())


async def test_session_follows_a_prompt_to_history(sim):
    session = ServerSession(ServerConfig("sim", sim.url), health_interval=0.1, backoff=FAST)
    finished = []
    session.subscribe(lambda u: finished.append(u.prompt) if u.kind == UpdateKind.FINISHED else None)
    session.start()
    try:
        await wait_for(lambda: session.state == CONNECTED)
        assert session.stats is not None and session.stats.devices
        result = await session.submit(sim_prompt(sim))
        await wait_for(lambda: any(p.prompt_id == result.prompt_id for p in finished))
        state = session.tracker.get(result.prompt_id)
        assert state.status == "success" and state.fraction == 1.0
        await wait_for(lambda: result.prompt_id in session.history)
    finally:
        await session.stop()


async def test_session_reports_down_and_recovers(sim):
    manager = SessionManager([ServerConfig("sim", sim.url)], health_interval=0.1, backoff=FAST)
    manager.start()
    session = manager.active
    try:
        await wait_for(lambda: session.state == CONNECTED)
        await sim.kill()
        await wait_for(lambda: session.state == DOWN)
        assert "Cannot reach" in session.reason or session.reason
        await sim.revive()
        await wait_for(lambda: session.state == CONNECTED)
    finally:
        await manager.stop()


async def test_back_from_an_outage_reconnects_without_waiting_out_the_backoff(sim):
    # A minute of backoff: only the health poll's retry_now() can reconnect within the test.
    slow = Backoff(initial=60, cap=60, jitter=0)
    session = ServerSession(ServerConfig("sim", sim.url), health_interval=0.1, backoff=slow)
    session.start()
    try:
        await wait_for(lambda: session.state == CONNECTED)
        await sim.kill()
        await wait_for(lambda: session.state == DOWN)
        await sim.revive()
        await wait_for(lambda: session.state == CONNECTED)
    finally:
        await session.stop()


@contextlib.asynccontextmanager
async def slow_session(reconnect_after: float):
    """A simulator taking a few seconds per prompt, and a started session that reconnects only after a while."""
    from pistachio_tui.sim.server import SimServer

    sim = SimServer(step_delay=0.05)
    await sim.start()
    session = ServerSession(ServerConfig("sim", sim.url), health_interval=0.1,
                            backoff=Backoff(initial=reconnect_after, cap=reconnect_after, jitter=0))
    try:
        yield sim, session
    finally:
        await session.stop()
        await sim.stop()


async def test_prompts_that_end_during_an_outage_are_reported_finished():
    """One prompt finishes while the socket is down, one is forgotten by a restart: both end as FINISHED."""
    async with slow_session(reconnect_after=1.5) as (sim, session):
        finished = []
        session.subscribe(lambda u: finished.append(u.prompt) if u.kind == UpdateKind.FINISHED else None)
        session.start()
        await wait_for(lambda: session.state == CONNECTED)
        quiet = await session.submit(sim_prompt(sim))
        await wait_for(lambda: quiet.value > 0)
        sim.drop_websockets()
        await wait_for(lambda: quiet.prompt_id in sim.queue.history)
        await wait_for(lambda: quiet in finished)
        assert quiet.status == "success"

        lost = await session.submit(fresh_prompt(sim, 11))
        await wait_for(lambda: lost.value > 0)
        await sim.restart(0.05)
        await wait_for(lambda: lost in finished)
        assert lost.lost


async def test_a_prompt_that_ended_beyond_the_resync_window_is_not_lost():
    from pistachio_tui.comfy.client import ComfyClient

    async with slow_session(reconnect_after=4) as (sim, session):  # both prompts end before the reconnect
        session._stream.resync_items = 1  # the resync then sees only the newest prompt
        session.max_history = 1  # and so does the history poll
        session.start()
        await wait_for(lambda: session.state == CONNECTED)
        ours = await session.submit(sim_prompt(sim))
        await wait_for(lambda: ours.value > 0)
        sim.drop_websockets()
        async with ComfyClient(sim.url) as other:
            later = (await other.submit(fresh_prompt(sim, 12))).prompt_id
            await wait_for(lambda: later in sim.queue.history)
        await wait_for(lambda: ours.finished)
        assert ours.status == "success" and not ours.lost
