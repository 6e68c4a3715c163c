"""``pistachio restart`` against the simulated Manager of every dialect in use."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from pistachio_tui.cli import main
from pistachio_tui.sim.server import SimServer

MARKER = "before-the-restart\n"


@pytest.mark.parametrize(("version", "label"), [
    ("V3.39.2", "3.x, state changes by GET"), ("V3.41", "3.x, state changes by POST"),
    ("V4.0.4", "4.x, state changes by GET"), ("V4.2.1", "4.x, state changes by POST"),
])
async def test_restart_waits_until_the_server_is_back(capsys, version, label):
    sim = SimServer(step_delay=0.001, manager=version, reboot_downtime=0.3)
    await sim.start()
    sim.log.write(MARKER)
    try:
        code = await asyncio.to_thread(main, ["restart", "--server", sim.url])
        log = "".join(entry["m"] for entry in sim.log.entries)
    finally:
        await sim.stop()
    out = capsys.readouterr().out
    assert code == 0, out
    assert label in out and "is back after" in out
    # A restarted server starts a new log.
    assert MARKER not in log


async def test_refused_restart_is_reported_at_once(capsys):
    sim = SimServer(step_delay=0.001, manager="V4.0.4")
    await sim.start()
    sim.manager.security_level = "strong"
    began = time.monotonic()
    try:
        code = await asyncio.to_thread(main, ["restart", "--server", sim.url, "--json"])
    finally:
        await sim.stop()
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and time.monotonic() - began < 5
    assert not result["ok"] and "refused GET /v2/manager/reboot (403)" in result["message"]
    assert "security_level" in result["message"]


async def test_no_manager_says_restart_by_hand(capsys):
    sim = SimServer(step_delay=0.001)
    await sim.start()
    try:
        code = await asyncio.to_thread(main, ["restart", "--server", sim.url])
    finally:
        await sim.stop()
    assert code == 1 and "restart ComfyUI by hand" in capsys.readouterr().err


def test_unreachable_server(capsys):
    assert main(["restart", "--server", "http://127.0.0.1:9"]) == 3
    assert "Cannot reach ComfyUI" in capsys.readouterr().err
