"""The failure switches: errors, garbage, stalls, dropped sockets, a vanished server, a restart."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.sim.sim_helpers import WsRecorder, recorded_prompt, wait_until


async def finished_prompt(sim, session, http) -> str:
    prompt, extra = recorded_prompt("success")
    async with WsRecorder(session, sim.url, "c") as ws:
        prompt_id = (await http.post("/prompt", json={"prompt": prompt, "client_id": "c"})).json()["prompt_id"]
        await ws.wait_for_end(prompt_id)
    return prompt_id


async def test_fail_next_counts_down(sim, http):
    sim.fail_next(status=503, times=2)
    assert (await http.get("/queue")).status_code == 503
    assert (await http.get("/system_stats")).status_code == 503
    assert (await http.get("/queue")).status_code == 200


async def test_garbage_next_is_unparseable_once(sim, http):
    sim.garbage_next()
    response = await http.get("/queue")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert (await http.get("/queue")).json()["queue_running"] == []


async def test_stall_makes_impatient_clients_time_out(sim):
    sim.stall(5)
    # Only the read is impatient: a connect on a busy test machine can take longer than 50 ms.
    async with httpx.AsyncClient(base_url=sim.url, timeout=httpx.Timeout(0.05, connect=5.0)) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.get("/queue")
    sim.stall(0)


async def test_drop_websockets_cuts_sockets(sim, session):
    async with WsRecorder(session, sim.url, "c") as ws:
        sim.drop_websockets()
        await wait_until(ws.closed.is_set, "the socket to close")
    assert sim.hub.clients == {}


async def test_kill_and_revive_keep_state(sim, session, http):
    prompt_id = await finished_prompt(sim, session, http)
    url = sim.url
    await sim.kill()
    async with httpx.AsyncClient(base_url=url, timeout=2) as fresh:
        with pytest.raises(httpx.ConnectError):
            await fresh.get("/queue")
    await sim.revive()
    assert sim.url == url
    async with httpx.AsyncClient(base_url=url, timeout=2) as fresh:
        assert prompt_id in (await fresh.get("/history")).json()


async def test_kill_cuts_open_websockets(sim, session):
    async with WsRecorder(session, sim.url, "c") as ws:
        await sim.kill()
        await wait_until(ws.closed.is_set, "the socket to close")
    await sim.revive()


async def test_restart_forgets_everything_but_files(sim, session, http):
    prompt_id = await finished_prompt(sim, session, http)
    image = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]["outputs"]["3"]["images"][0]
    async with WsRecorder(session, sim.url, None) as before:
        first_sid = before.texts()[0]["data"]["sid"]
        await sim.restart(0.01)
        await wait_until(before.closed.is_set, "the socket to drop")
    async with httpx.AsyncClient(base_url=sim.url, timeout=2) as fresh:
        assert (await fresh.get("/history")).json() == {}
        assert (await fresh.get("/queue")).json() == {"queue_running": [], "queue_pending": []}
        assert (await fresh.get("/view", params=image)).status_code == 200
    async with WsRecorder(session, sim.url, None) as after:
        assert after.texts()[0]["data"]["sid"] != first_sid
    _, messages = await rerun_cached(sim, session, http)
    assert next(m for m in messages if m["type"] == "execution_cached")["data"]["nodes"] == []


async def rerun_cached(sim, session, http):
    prompt, _ = recorded_prompt("cached")
    async with WsRecorder(session, sim.url, "c") as ws:
        async with httpx.AsyncClient(base_url=sim.url, timeout=5) as fresh:
            prompt_id = (await fresh.post("/prompt", json={"prompt": prompt, "client_id": "c"})).json()["prompt_id"]
        return prompt_id, await ws.wait_for_end(prompt_id)


async def test_restart_abandons_the_running_prompt(sim, session, http):
    sim.knobs.step_delay = 0.01
    prompt, _ = recorded_prompt("interrupted")
    async with WsRecorder(session, sim.url, "c") as ws:
        await http.post("/prompt", json={"prompt": prompt, "client_id": "c"})
        await wait_until(lambda: "progress" in ws.types(), "sampling to start")
        await sim.restart(0)
    async with httpx.AsyncClient(base_url=sim.url, timeout=2) as fresh:
        assert (await fresh.get("/prompt")).json() == {"exec_info": {"queue_remaining": 0}}
        assert (await fresh.get("/history")).json() == {}
