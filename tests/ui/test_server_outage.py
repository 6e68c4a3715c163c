"""The app survives its server vanishing and coming back, whichever screen is open."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from pistachio_tui.comfy.session import CONNECTED, DOWN
from pistachio_tui.ui.widgets.status_header import StatusHeader

from .helpers import make_app, until

SCREENS = {"1": "servers", "2": "workflows", "3": "queue", "4": "gpu", "5": "fix", "6": "training", "7": "pods",
           "8": "batch"}


@pytest.mark.parametrize("key", list(SCREENS))
async def test_screen_survives_kill_and_revive(sim, tmp_path, key):
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(80, 24)) as pilot:
        session = app.manager.active
        await until(pilot, lambda: session.state == CONNECTED)
        await pilot.press(key)
        assert app.current_mode == SCREENS[key]
        header = app.screen.query_one(StatusHeader)
        await sim.kill()
        await until(pilot, lambda: session.state == DOWN and "down" in str(header.render()))
        await sim.revive()
        await until(pilot, lambda: session.state == CONNECTED and "connected" in str(header.render()))
        following = str(int(key) % len(SCREENS) + 1)
        await pilot.press(following)
        assert app.current_mode == SCREENS[following]


def rendered(widget) -> str:
    out = io.StringIO()
    Console(width=120, file=out).print(widget.content)
    return out.getvalue()


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
async def test_dashboard_follows_outage(sim, tmp_path, size):
    app = make_app(tmp_path, ("sim", sim.url), dashboard=True)
    async with app.run_test(size=size) as pilot:
        session = app.manager.active
        await until(pilot, lambda: session.state == CONNECTED)
        assert app.current_mode == "dashboard"
        servers = app.screen.query_one("#dash-servers")
        await until(pilot, lambda: "connected" in rendered(servers))
        await sim.kill()
        await until(pilot, lambda: "down" in rendered(servers))
        await sim.revive()
        await until(pilot, lambda: "connected" in rendered(servers))
