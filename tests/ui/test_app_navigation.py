"""Keyboard navigation, palette and help on the app shell."""

from __future__ import annotations

from pistachio_tui.comfy.session import CONNECTED
from pistachio_tui.ui.help_screen import HelpScreen

from .helpers import make_app, until


async def test_number_keys_reach_every_screen(sim, tmp_path):
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        for key, mode in zip("2345671", ["workflows", "queue", "gpu", "fix", "training", "pods", "servers"]):
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode


async def test_help_lists_bindings_of_every_screen(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("Static").render())
        for needle in ("Interrupt", "Add", "Queue", "Open path", "Dashboard"):
            assert needle in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
