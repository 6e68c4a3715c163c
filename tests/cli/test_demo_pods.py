"""The demo's Pods screen: three SIMULATED pods from the simulated RunPod, stop/start on them,
and not one byte for RunPod (or any host but this machine)."""

from __future__ import annotations

import os
import socket

import pytest
from textual.widgets import DataTable

from pistachio_tui.cli.demo_commands import DEMO_COMFY_POD, DEMO_LABEL, DEMO_RUNPOD_KEY, demo_session
from pistachio_tui.ui.app import PistachioApp
from pistachio_tui.ui.dialogs import ConfirmScreen, YesNo
from tests.ui.helpers import FAST, until

IDLE_POD = "sim0idle0a100"
RUNPOD_ENV = ("RUNPOD_API_URL", "RUNPOD_REST_URL", "RUNPOD_PROXY_URL", "RUNPOD_SERVERLESS_URL", "RUNPOD_API_KEY")


@pytest.fixture
def loopback_only(monkeypatch):
    """Every host name looked up, refusing all but this machine's (DNS is the first step off it)."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("127.0.0.1", "localhost", "::1"):
            looked_up.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"the demo must not look up {name}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


async def test_demo_pods_screen_lists_simulated_pods_and_stops_the_idle_one(loopback_only, monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", "the-users-real-key")
    monkeypatch.delenv("RUNPOD_API_URL", raising=False)
    with demo_session(step_delay=0.01, autorun=False, train_step_seconds=0.01) as demo:
        assert os.environ["RUNPOD_API_KEY"] == DEMO_RUNPOD_KEY
        assert all(os.environ[name].startswith("http://127.0.0.1:") for name in RUNPOD_ENV[:-1])
        app = PistachioApp(demo.settings, demo_label=DEMO_LABEL, health_interval=0.1, backoff=FAST)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("7")
            table = app.screen.query_one("#pods-table", DataTable)
            await until(pilot, lambda: table.row_count == 3)
            names = [str(table.get_row_at(i)[0]) for i in range(3)]
            assert all("SIMULATED" in name for name in names), names
            view = app.screen.query_one("#pods-view")
            # The ComfyUI pod's ComfyUI is the demo's simulated server, reached through the simulated proxy.
            await until(pilot, lambda: view.comfy_ok.get(DEMO_COMFY_POD) is True)
            assert IDLE_POD in view.state.idle and DEMO_COMFY_POD not in view.state.idle
            table.focus()
            table.move_cursor(row=table.get_row_index(IDLE_POD))
            await pilot.press("x")
            if isinstance(app.screen, (ConfirmScreen, YesNo)):
                await pilot.press("y")
            await until(pilot, lambda: demo.runpod.pod(IDLE_POD)["desiredStatus"] == "EXITED")
            await until(pilot, lambda: "stopped" in str(table.get_row(IDLE_POD)[2]).lower()
                        or "exited" in str(table.get_row(IDLE_POD)[2]).lower())
        assert "podStop" in demo.runpod.operations()
    assert loopback_only == []
    assert os.environ["RUNPOD_API_KEY"] == "the-users-real-key" and "RUNPOD_API_URL" not in os.environ
    assert "RUNPOD_PROXY_URL" not in os.environ
