"""Where the contract tests run: always the simulator, and a real ComfyUI when one is named.

``PISTACHIO_LIVE_COMFY=http://host:port`` adds the real server as a second
target for every case (without it those cases are skipped; the simulator
cases always run). Restarting a server is tried only on one marked
``PISTACHIO_LIVE_COMFY_RESTARTABLE=1`` with ComfyUI-Manager enabled: the
contract never restarts a server somebody else is using.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from pistachio_tui.sim.server import SimServer

LIVE_URL = os.environ.get("PISTACHIO_LIVE_COMFY", "").rstrip("/")
LIVE_RESTARTABLE = os.environ.get("PISTACHIO_LIVE_COMFY_RESTARTABLE") == "1"
#: A real CPU needs seconds for a few image nodes; the simulator gets as long per node.
SIM_NODE_DELAY = 0.4


@dataclass
class Target:
    """One server the cases run against: its URL and, for the simulator, the simulator itself."""

    name: str
    url: str
    sim: SimServer | None = None

    @property
    def live(self) -> bool:
        return self.sim is None

    async def restart(self) -> None:
        """Restart the server process; its queue and history are gone afterwards."""
        if self.sim is not None:
            await self.sim.restart(0.3)
            return
        if not LIVE_RESTARTABLE:
            pytest.skip("set PISTACHIO_LIVE_COMFY_RESTARTABLE=1 for a live server this test may restart")
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            # ComfyUI-Manager 4.0.4 routes GET for reboot; 4.2.1+ wants POST.
            try:
                response = await http.post("/v2/manager/reboot")
                if response.status_code == 405:
                    response = await http.get("/v2/manager/reboot")
            except httpx.TransportError:
                # The process replaced itself before answering: that is the restart.
                return
        assert response.status_code in (200, 201), f"the Manager refused to restart: {response.status_code}"


@pytest.fixture(params=["sim", "live"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    if request.param == "live":
        if not LIVE_URL:
            pytest.skip("PISTACHIO_LIVE_COMFY is not set")
        yield Target("live", LIVE_URL)
        return
    sim = SimServer(step_delay=0.02, node_delay=SIM_NODE_DELAY)
    url = await sim.start()
    try:
        yield Target("sim", url, sim)
    finally:
        await sim.stop()
