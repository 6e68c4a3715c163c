"""A server that answers 500, stalls, sends cut-off JSON or is gone: typed errors whose
messages say what to check, with no traceback text in them."""

from __future__ import annotations

import pytest

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import AuthRequired, BadResponse, ServerError, ServerUnreachable
from pistachio_tui.comfy.events import Disconnected
from tests.faults.helpers import Follower, assert_actionable, slow_prompt, wait_until


@pytest.fixture
async def client(sim):
    async with ComfyClient(sim.url, timeout=0.3) as c:
        yield c


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_becomes_server_error(sim, client, status):
    sim.fail_next(status=status)
    with pytest.raises(ServerError) as caught:
        await client.queue()
    assert caught.value.status == status
    assert_actionable(caught.value.message, sim.url, f"({status})", "/queue", "see the server log")
    assert (await client.queue()).running == []


@pytest.mark.parametrize("status", [401, 403])
async def test_proxy_refusal_asks_for_an_auth_header(sim, client, status):
    sim.fail_next(status=status)
    with pytest.raises(AuthRequired) as caught:
        await client.system_stats()
    assert_actionable(caught.value.message, sim.url, str(status), "auth header", "`headers` setting")


async def test_5xx_on_submit_is_not_taken_for_a_rejection(sim, client):
    sim.fail_next(status=500)
    with pytest.raises(ServerError) as caught:
        await client.submit(slow_prompt(1))
    assert_actionable(caught.value.message, sim.url, "POST /prompt", "(500)")


async def test_stalled_server_times_out_as_unreachable(sim, client):
    sim.stall(5)
    try:
        with pytest.raises(ServerUnreachable) as caught:
            await client.system_stats()
    finally:
        sim.stall(0)
    assert_actionable(caught.value.message, sim.url, "did not answer within 0.3 s", "(timeout)")


async def test_cut_off_json_becomes_bad_response(sim, client):
    sim.garbage_next()
    with pytest.raises(BadResponse) as caught:
        await client.queue()
    assert_actionable(caught.value.message, sim.url, "not JSON", "GET /queue", "ComfyUI server")
    assert (await client.queue()).pending == []


async def test_gone_server_is_unreachable(sim, client):
    url = sim.url
    await sim.kill()
    try:
        with pytest.raises(ServerUnreachable) as caught:
            await client.queue()
    finally:
        await sim.revive()
    assert_actionable(caught.value.message, url, "is it running", "(connection refused)")


@pytest.mark.parametrize("fault", ["500", "garbage"])
async def test_failed_resync_is_reported_and_retried(sim, fault):
    async with Follower(sim.url) as follower:
        if fault == "500":
            sim.fail_next(status=500)
        else:
            sim.garbage_next()
        sim.drop_websockets()
        await wait_until(lambda: follower.resyncs, "a resync that works")
    reasons = [d.reason for d in follower.disconnects]
    failed = [r for r in reasons if "(500)" in r or "not JSON" in r]
    assert failed, reasons
    for reason in reasons:
        assert_actionable(reason, sim.url)


async def test_disconnect_reasons_while_the_server_is_down(sim):
    async with Follower(sim.url) as follower:
        await sim.kill()
        await wait_until(lambda: len(follower.disconnects) >= 3, "a few reconnect attempts")
        await sim.revive()
        await wait_until(lambda: follower.resyncs, "the resync after revival")
    assert all(isinstance(d, Disconnected) and d.retry_in > 0 for d in follower.disconnects)
    refused = [d.reason for d in follower.disconnects[1:]]
    for reason in refused:
        assert_actionable(reason, sim.url, "is it running")
