"""A burst of progress events is drawn once per frame, and its last step is always the one shown."""

from __future__ import annotations

import pytest
from textual.widgets import ProgressBar, Static

from pistachio_tui.comfy.events import Executing, ExecutionStart, Progress
from pistachio_tui.comfy.session import DOWN
from pistachio_tui.comfy.types import QueueItem, QueueState

from .helpers import DEAD_URL, make_app, until

STEPS = 500


def running_prompt(session) -> None:
    """Make ``session`` believe the server runs prompt ``p1`` (one sampler node), as a queue poll would."""
    item = QueueItem(1, "p1", {"2": {"class_type": "KSampler", "inputs": {}}}, {}, ["2"])
    session.tracker.track_item(item)
    session.queue = QueueState(running=[item], pending=[])


async def burst(session) -> None:
    """A whole sampler run through the session in one turn of the loop, as a flooded websocket delivers it."""
    await session._on_event(ExecutionStart("p1"))
    await session._on_event(Executing("p1", "2", "2"))
    for step in range(1, STEPS + 1):
        await session._on_event(Progress("p1", "2", step, STEPS))


def last_step_shown(screen, state) -> bool:
    overall = "#overall" if screen.MODE == "queue" else "#dash-progress"
    if screen.query_one(overall, ProgressBar).progress != round(state.fraction * 100, 1):
        return False
    if screen.MODE == "queue":
        return f"step {STEPS}/{STEPS}" in str(screen.query_one("#node-line", Static).render())
    return True


@pytest.mark.parametrize("dashboard", [False, True], ids=["queue", "dashboard"])
async def test_a_burst_of_progress_is_drawn_once_with_its_last_step(tmp_path, dashboard):
    app = make_app(tmp_path, ("dead", DEAD_URL), dashboard=dashboard)
    async with app.run_test(size=(100, 30)) as pilot:
        if not dashboard:
            await pilot.press("3")
        session = app.manager.active
        # Servers connect after the first paint; once the dead one is down, no health update (the
        # dashboard redraws on any) can draw the last step before the coalesced progress does.
        await until(pilot, lambda: session.state == DOWN)
        running_prompt(session)
        screen = app.screen
        progress_redraws = []
        original = screen.refresh_view

        def counting(update):
            if update is not None and update.kind == "progress":
                progress_redraws.append(update)
            original(update)

        screen.refresh_view = counting
        await burst(session)
        state = session.running()
        assert state.value == STEPS
        await until(pilot, lambda: last_step_shown(screen, state))
        assert 1 <= len(progress_redraws) <= 2, "progress updates were not coalesced"


async def test_updates_arriving_while_the_app_closes_are_dropped(tmp_path):
    from pistachio_tui.comfy.session import SessionUpdate, UpdateKind

    app = make_app(tmp_path, ("studio", DEAD_URL))
    async with app.run_test(size=(80, 24)):
        session = app.manager.active
    # The screens are gone; a server's late update and the progress timer must not raise.
    app._on_session_update(SessionUpdate(session, UpdateKind.QUEUE))
    app._progress[session] = SessionUpdate(session, UpdateKind.PROGRESS)
    app._flush_progress()
