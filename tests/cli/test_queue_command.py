"""``pistachio queue``: every client's prompts, listed once or followed to their end."""

from __future__ import annotations

import asyncio
import io
import json

import httpx
import pytest

from pistachio_tui.cli import build_parser, exit_codes
from pistachio_tui.cli.queue_commands import follow
from pistachio_tui.comfy.session import CONNECTED, ServerSession
from pistachio_tui.config import ServerConfig
from pistachio_tui.sim.server import SimServer
from tests.contract.prompts import quick_prompt, slow_prompt
from tests.sim.sim_helpers import wait_until


@pytest.fixture
async def sim():
    server = SimServer(step_delay=0.01, node_delay=0.1)
    await server.start()
    yield server
    await server.stop()


async def cli(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.func(args)


async def queue_from_elsewhere(url: str, prompt: dict, client_id: str = "a-browser-tab") -> str:
    async with httpx.AsyncClient(base_url=url) as curl:
        response = await curl.post("/prompt", json={"prompt": prompt, "client_id": client_id})
    return response.json()["prompt_id"]


async def test_the_listing_shows_running_pending_and_recent_prompts_of_any_client(sim, capsys):
    done = await queue_from_elsewhere(sim.url, quick_prompt("cli_done"))
    await wait_until(lambda: done in sim.queue.history, "the first prompt to finish")
    running = await queue_from_elsewhere(sim.url, slow_prompt(8))
    pending = await queue_from_elsewhere(sim.url, quick_prompt("cli_pending"))
    await wait_until(lambda: sim.queue.running is not None, "the slow prompt to start")
    assert await cli("queue", "--server", sim.url, "--json") == exit_codes.OK
    listing = json.loads(capsys.readouterr().out)
    assert [p["prompt_id"] for p in listing["running"]] == [running]
    assert listing["running"][0]["status"] == "running" and listing["running"][0]["ours"] is False
    assert [p["prompt_id"] for p in listing["pending"]] == [pending]
    [recent] = listing["recent"]
    assert (recent["prompt_id"], recent["status"]) == (done, "success")
    assert recent["outputs"][0]["filename"].startswith("cli_done")


async def test_an_unreachable_server_exits_3(capsys):
    assert await cli("queue", "--server", "http://127.0.0.1:9", "--json") == exit_codes.UNREACHABLE
    assert json.loads(capsys.readouterr().out)["status"] == "unreachable"


@pytest.mark.parametrize("as_json", [True, False])
async def test_follow_prints_another_clients_prompt_until_its_final_status(sim, as_json):
    session = ServerSession(ServerConfig("sim", sim.url), health_interval=0.2)
    session.start()
    out, stop = io.StringIO(), asyncio.Event()
    try:
        await wait_until(lambda: session.state == CONNECTED, "the session to connect")
        printing = asyncio.create_task(follow(session, out, as_json, stop))
        prompt_id = await queue_from_elsewhere(sim.url, slow_prompt(3))
        await wait_until(lambda: prompt_id[:8] in out.getvalue() and "success" in out.getvalue(),
                         "the other client's prompt to be printed as finished", limit=20)
        stop.set()
        await printing
    finally:
        await session.stop()
    lines = [line for line in out.getvalue().splitlines() if line]
    if as_json:
        records = [json.loads(line) for line in lines if prompt_id in line]
        assert [r["status"] for r in records][0] in ("queued", "running")
        assert records[-1]["status"] == "success" and records[-1]["ours"] is False
        assert records[-1]["outputs"] and records[-1]["fraction"] == 1.0
        assert "running" in [r["status"] for r in records]
    else:
        mine = [line for line in lines if prompt_id[:8] in line]
        assert "success" in mine[-1] and "output(s)" in mine[-1] and "(other client)" in mine[-1]
