"""ComfyUI-Manager contract: the same cases against the simulated Manager and, when
``PISTACHIO_LIVE_COMFY=http://host:port`` names a real ComfyUI with its Manager, against it.

The simulator run always happens. A live server is only restarted when
``PISTACHIO_LIVE_COMFY_RESTARTABLE=1`` says nobody else is using it. The live
Manager is expected in ``network_mode = offline`` (as ``real-comfyui.sh
--manager`` sets it up), so an install of a registry pack fails without touching
the server's custom nodes.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

import pytest

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.fix.manager import InstallSpec, ManagerClient
from pistachio_tui.fix.restart import restart_server
from pistachio_tui.sim.server import SimServer

LIVE_URL = os.environ.get("PISTACHIO_LIVE_COMFY", "").rstrip("/")
LIVE_RESTARTABLE = os.environ.get("PISTACHIO_LIVE_COMFY_RESTARTABLE") == "1"


@pytest.fixture(params=["sim", "live"])
async def comfy(request: pytest.FixtureRequest) -> AsyncIterator[ComfyClient]:
    if request.param == "live":
        if not LIVE_URL:
            pytest.skip("PISTACHIO_LIVE_COMFY is not set")
        async with ComfyClient(LIVE_URL, timeout=30) as client:
            yield client
        return
    sim = SimServer(step_delay=0.001, manager=True, reboot_downtime=0.5)
    await sim.start()
    try:
        async with ComfyClient(sim.url) as client:
            yield client
    finally:
        await sim.stop()


async def test_the_manager_and_its_dialect_are_detected(comfy):
    manager = ManagerClient(comfy)
    dialect = await manager.detect()
    assert dialect is not None, "no ComfyUI-Manager found"
    # The method the dialect does not use is refused without side effects: a POST to a GET
    # route with 405, a GET to a POST route with 404 (ComfyUI's static files take other GETs).
    other, refused = ("POST", 405) if dialect.state_method == "GET" else ("GET", 404)
    response = await comfy.request(other, dialect.path("/manager/queue/start"))
    assert response.status_code == refused
    status = await manager.queue_status()
    assert status.in_progress_count >= 0


async def test_an_unresolvable_install_reports_its_own_result(comfy):
    manager = ManagerClient(comfy)
    ui_id = await manager.queue_install(InstallSpec("pistachio-no-such-pack-7f3a", "latest"))
    result = (await manager.run([ui_id], timeout=120, poll_interval=0.5))[ui_id]
    assert result.ok is False
    assert "Cannot resolve install target: 'pistachio-no-such-pack-7f3a@latest'" in result.result
    # 4.0.x cannot hand out a finished task's record (400); the client says "unknown", never guesses.
    if manager.dialect is not None and manager.dialect.state_method == "GET":
        assert await manager.task_history(ui_id) is None


async def test_restart_comes_back(comfy, request):
    if "live" in request.node.callspec.id and not LIVE_RESTARTABLE:
        pytest.skip("set PISTACHIO_LIVE_COMFY_RESTARTABLE=1 for a live server this test may restart")
    began = time.monotonic()
    took = await restart_server(comfy, ManagerClient(comfy), timeout=120)
    assert took <= time.monotonic() - began < 120
    assert (await comfy.system_stats()).comfyui_version
