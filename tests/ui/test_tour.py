"""The TUI issue's keyboard tour at 80×24, end to end, on a settings file a person wrote by hand.

Add a server with a typo in its URL (refused, nothing saved), add a good one,
open a workflow and queue it, interrupt it, filter the Queue table, start a
batch and quit while it runs (confirming). Nothing may log a traceback or an
unretrieved task error, and the settings file must load afterwards with its
comments. ``tests/manual/tmux_tour.py`` types the same tour into a real
terminal.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import shutil

from textual.widgets import DataTable, Input

from pistachio_tui.comfy.session import CONNECTED
from pistachio_tui.config import load_settings
from pistachio_tui.sim.server import SimServer
from pistachio_tui.ui.app import PistachioApp
from pistachio_tui.ui.dialogs import ConfirmScreen
from pistachio_tui.ui.servers.form import ServerForm

from .helpers import FAST, until
from .test_queue_flow import open_by_path, sim_workflow

SETTINGS = """\
# My machines. This comment must survive the tour.
theme = "textual-dark"   # the one I like

# Servers are added through the Servers screen.
"""


async def type_into(pilot, text: str) -> None:
    await pilot.press(*text)


async def test_the_keyboard_tour_at_80_by_24(tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    settings_path = tmp_path / "settings.toml"
    settings_path.write_text(SETTINGS)
    slow = SimServer(step_delay=0.05)
    await slow.start()
    try:
        app = PistachioApp(load_settings(settings_path), health_interval=0.1, backoff=FAST)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("1", "a")
            await type_into(pilot, "typo")
            await pilot.press("enter")
            await type_into(pilot, "http://[::1")
            await pilot.press("enter", "enter")
            assert isinstance(app.screen, ServerForm), "a URL the app could not load is refused"
            assert "not a valid URL" in str(app.screen.query_one("#form-error").render())
            await pilot.press("escape")
            assert load_settings(settings_path).servers == []

            await pilot.press("a")
            await type_into(pilot, "sim")
            await pilot.press("enter")
            await type_into(pilot, slow.url)
            await pilot.press("enter", "enter")
            await until(pilot, lambda: "sim" in app.manager.sessions
                        and app.manager.sessions["sim"].state == CONNECTED)

            await open_by_path(pilot, sim_workflow(tmp_path))
            await pilot.press("g", "3")
            session = app.manager.active
            await until(pilot, lambda: session.running() is not None and session.running().value > 0)
            await pilot.press("i")
            await until(pilot, lambda: any(e.outcome == "interrupted" for e in session.history.values()))
            history = app.screen.query_one("#history", DataTable)
            await until(pilot, lambda: history.row_count >= 1)
            await pilot.press("slash", *"nomatch", "enter")
            await until(pilot, lambda: history.row_count == 0)
            await pilot.press("slash", "escape")
            await until(pilot, lambda: history.row_count >= 1)

            shutil.copy(sim_workflow(tmp_path), tmp_path / "wf.json")
            (tmp_path / "batch.toml").write_text('workflow = "wf.json"\ncount = 40\noutput = "out"\n')
            await pilot.press("8", "o")
            app.screen.query_one("#batch-file", Input).value = str(tmp_path / "batch.toml")
            await pilot.press("enter")
            view = app.screen.view
            await until(pilot, lambda: len(view.jobs) == 40)
            await pilot.press("s")
            await until(pilot, lambda: view.running)
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
        gc.collect()
        await asyncio.sleep(0.1)
        gc.collect()
    finally:
        await slow.stop()
    problems = [r.getMessage() for r in caplog.records
                if r.levelno >= logging.ERROR or "never retrieved" in r.getMessage()]
    assert not problems, problems
    text = settings_path.read_text()
    assert "This comment must survive the tour." in text and "# the one I like" in text
    assert [s.name for s in load_settings(settings_path).servers] == ["sim"]
