"""Keyboard traps: Esc leaves any text field, so the number keys switch screens again."""

from __future__ import annotations

from textual.widgets import Input, Tree

from .helpers import DEAD_URL, make_app


async def test_escape_leaves_the_workflows_path_input(tmp_path):
    app = make_app(tmp_path, ("studio", DEAD_URL))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "o", "1", "2")
        path = app.screen.query_one("#open-path", Input)
        assert path.value == "12", "digits typed in a field are text"
        await pilot.press("escape")
        assert isinstance(app.focused, Tree)
        await pilot.press("3")
        assert app.current_mode == "queue"


async def test_escape_leaves_every_field_of_the_workflows_and_servers_screens(tmp_path):
    app = make_app(tmp_path, ("studio", DEAD_URL))
    async with app.run_test(size=(80, 24)) as pilot:
        for key, selector in (("2", "#batch"), ("1", "#log-search")):
            await pilot.press(key)
            app.screen.query_one(selector, Input).focus()
            await pilot.pause()
            await pilot.press("escape")
            assert not isinstance(app.focused, Input), selector


async def test_enter_walks_the_queue_form_and_queues_on_the_last_field(sim, tmp_path):
    from pistachio_tui.comfy.session import CONNECTED

    from .helpers import until
    from .test_queue_flow import open_by_path, sim_workflow

    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        screen = await open_by_path(pilot, sim_workflow(tmp_path))
        await until(pilot, lambda: bool(list(screen.query(".param"))))
        params = list(screen.query(".param").results(Input))
        screen.query_one("#batch", Input).focus()
        await pilot.press("enter")
        assert app.focused is params[0]
        await pilot.press("enter")
        assert app.focused is params[1]
        assert not app.manager.active.history
        params[-1].focus()
        await pilot.press("enter")
        await until(pilot, lambda: len(app.manager.active.history) == 1)


async def test_help_lists_the_current_screens_keys_first(tmp_path):
    from pistachio_tui.ui.help_screen import HelpScreen

    app = make_app(tmp_path, ("studio", DEAD_URL))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        sections = [line for line in str(app.screen.query_one("Static").render()).splitlines()
                    if line and not line.startswith(" ")]
        assert sections[1].startswith("Queue — "), sections[:3]
        assert sections[2] == "Everywhere"
