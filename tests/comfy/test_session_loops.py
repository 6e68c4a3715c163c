"""No background loop of a ServerSession dies silently: every failure becomes a reason on screen."""

from __future__ import annotations

import asyncio

from pistachio_tui.comfy.session import DOWN, ServerSession
from pistachio_tui.comfy.stream import Backoff
from pistachio_tui.config import ServerConfig
from pistachio_tui.failures import unexpected_reason
from tests.polling import wait_for

FAST = Backoff(initial=0.05, cap=0.1, jitter=0)


async def test_a_port_typo_reads_down_with_the_error_not_connecting_forever():
    # Built directly, as a settings file written by hand or an older version would give it:
    # no validation stands between the typo and the HTTP library.
    session = ServerSession(ServerConfig("typo", "http://127.0.0.1:81888"), health_interval=0.05, backoff=FAST)
    session.start()
    try:
        await wait_for(lambda: session.state == DOWN, timeout=5)
        assert "81888" in session.reason or "port" in session.reason.lower(), session.reason
        await asyncio.sleep(0.2)
        # Both loops are still there to notice a fixed configuration or a recovered server.
        assert all(not task.done() for task in session._tasks)
    finally:
        await asyncio.wait_for(session.stop(), 5)


async def test_an_unexpected_error_in_the_health_poll_is_shown_and_the_poll_goes_on(sim):
    session = ServerSession(ServerConfig("sim", sim.url), health_interval=0.05, backoff=FAST)
    real = session.client.system_stats
    calls = 0

    async def broken_once():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ExceptionGroup("unhandled errors in a TaskGroup", [OverflowError("port must be 0-65535.")])
        return await real()

    session.client.system_stats = broken_once
    seen = []
    session.subscribe(lambda u: seen.append((session.state, session.reason)))
    session.start()
    try:
        await wait_for(lambda: calls >= 3 and session.stats is not None)
        assert (DOWN, "OverflowError: port must be 0-65535.") in seen
    finally:
        await session.stop()


async def test_an_event_that_cannot_be_handled_is_a_reason_and_later_events_still_arrive(sim):
    session = ServerSession(ServerConfig("sim", sim.url), health_interval=0.05, backoff=FAST)
    handled = []
    real = session._on_event

    async def flaky(event):
        handled.append(event)
        if len(handled) == 1:
            raise KeyError("node")
        await real(event)

    session._on_event = flaky
    reasons = []
    session.subscribe(lambda u: reasons.append(session.reason))
    session.start()
    try:
        await wait_for(lambda: len(handled) >= 2)
        assert "KeyError: 'node'" in reasons
        assert not any(task.done() for task in session._tasks)
    finally:
        await session.stop()


def test_unexpected_reason_names_the_type_and_every_member_of_a_group():
    assert unexpected_reason(ValueError("bad")) == "ValueError: bad"
    assert unexpected_reason(KeyError()) == "KeyError"
    group = ExceptionGroup("g", [OverflowError("port"), ExceptionGroup("h", [TimeoutError()])])
    assert unexpected_reason(group) == "OverflowError: port; TimeoutError"
