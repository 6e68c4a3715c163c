"""Servers screen: add, edit and remove servers through the form; health shows up."""

from __future__ import annotations

from textual.widgets import DataTable, Log

from pistachio_tui.comfy.session import CONNECTED, DOWN
from pistachio_tui.config import load_settings
from pistachio_tui.ui.servers.form import ServerForm, parse_header

from .helpers import DEAD_URL, make_app, until


async def fill_form(pilot, name: str, url: str, header: str = "") -> None:
    form = pilot.app.screen
    assert isinstance(form, ServerForm)
    form.query_one("#name").value = name
    form.query_one("#url").value = url
    form.query_one("#header").value = header
    await pilot.press("ctrl+s")
    await pilot.pause()


async def test_add_edit_remove_server(sim, tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("a")
        await fill_form(pilot, "sim", sim.url, "Authorization: Bearer x")
        await until(pilot, lambda: app.manager.sessions["sim"].state == CONNECTED)
        saved = load_settings(app.settings.path)
        assert [(s.name, s.url, s.headers) for s in saved.servers] == [
            ("sim", sim.url, {"Authorization": "Bearer x"})]
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: "0.8.0" in [str(c) for c in table.get_row("sim")])

        await pilot.press("e")
        await fill_form(pilot, "gone", DEAD_URL)
        await until(pilot, lambda: "gone" in app.manager.sessions
                    and app.manager.sessions["gone"].state == DOWN)
        assert "Cannot reach" in app.manager.sessions["gone"].reason
        assert [s.name for s in load_settings(app.settings.path).servers] == ["gone"]

        await pilot.press("x", "y")
        await until(pilot, lambda: not app.manager.sessions)
        assert load_settings(app.settings.path).servers == []


async def test_form_rejects_bad_input(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await fill_form(pilot, "x", "localhost:8188")
        assert isinstance(app.screen, ServerForm)
        assert "http://" in str(app.screen.query_one("#form-error").render())
        await pilot.press("escape")
        assert not app.manager.sessions
    assert parse_header("nonsense") == "Auth header must look like `Authorization: Bearer …`"


async def test_log_loads_and_filters(sim, tmp_path):
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        await pilot.press("l")
        log = app.screen.query_one(Log)
        await until(pilot, lambda: log.line_count > 0)
        await pilot.press("slash")
        await pilot.press(*"zzz-no-such-line")
        await until(pilot, lambda: log.line_count == 0)
        await pilot.press("enter", "m")
        await until(pilot, lambda: any("memory freed" in str(n.message) for n in app._notifications))


async def test_active_server_is_the_one_picked_and_the_header_says_so(sim, tmp_path):
    from pistachio_tui.ui.widgets.status_header import StatusHeader

    def header(app) -> str:
        return str(app.screen.query_one(StatusHeader).render())

    app = make_app(tmp_path, ("one", sim.url), ("two", DEAD_URL))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.manager.active_name == "one"
        # Picked elsewhere (palette), then Servers shown again: its table cursor must not undo the pick.
        await pilot.press("3")
        app.switch_server("two")
        await pilot.press("1")
        await pilot.pause()
        await pilot.pause()
        assert app.manager.active_name == "two"
        assert header(app).startswith("Pistachio  two")
        assert app.screen.query_one(DataTable).cursor_row == 1, "the cursor follows the active server"

        # Adding a server says "Active server: three" and must mean it.
        await pilot.press("a")
        await fill_form(pilot, "three", sim.url)
        await pilot.pause()
        await pilot.pause()
        assert app.manager.active_name == "three"
        assert header(app).startswith("Pistachio  three")
