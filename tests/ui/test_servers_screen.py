"""Servers screen: add, edit and remove servers through the form; health shows up."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Log

from pistachio_tui.comfy.session import CONNECTED, DOWN
from pistachio_tui.config import load_settings
from pistachio_tui.ui.servers.form import ServerForm, parse_header
from pistachio_tui.ui.widgets.filter_table import FilterInput

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


@pytest.mark.parametrize(("url", "says"), [
    ("localhost:8188", "http://"),
    ("http://[::1", "not a valid URL"),
    ("http://", "names no host"),
    (":81888", "http://"),
    ("http://127.0.0.1:81888", "Port out of range"),
    ("localhost:abc", "http://"),
    ("http://localhost:abc", "not a valid URL"),
])
async def test_form_refuses_a_url_the_app_could_not_load(tmp_path, url, says):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await fill_form(pilot, "x", url)
        assert isinstance(app.screen, ServerForm), "the form stays open"
        assert says in str(app.screen.query_one("#form-error").render())
        assert app.focused is app.screen.query_one("#url")
        await pilot.press("escape")
        assert not app.manager.sessions
    assert not app.settings.path.exists(), "nothing was saved"
    assert parse_header("nonsense") == "Auth header must look like `Authorization: Bearer …`"


async def test_enter_moves_through_the_form_and_saves_on_the_last_field(sim, tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        form = app.screen
        await pilot.press(*"studio", "enter")
        assert app.focused is form.query_one("#url")
        await pilot.press(*sim.url, "enter")
        assert app.focused is form.query_one("#header")
        assert isinstance(app.screen, ServerForm), "not saved before the last field"
        await pilot.press("enter")
        await until(pilot, lambda: "studio" in app.manager.sessions)
        assert [s.url for s in load_settings(app.settings.path).servers] == [sim.url]


async def test_log_loads_and_filters(sim, tmp_path):
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        await pilot.press("l")
        log = app.screen.query_one(Log)
        await until(pilot, lambda: log.line_count > 0)
        await pilot.press("s")
        await pilot.press(*"zzz-no-such-line")
        await until(pilot, lambda: log.line_count == 0)
        await pilot.press("enter", "m")
        await until(pilot, lambda: any("memory freed" in str(n.message) for n in app._notifications))


async def test_url_column_shows_at_80_and_120_columns_and_slash_filters(tmp_path):
    app = make_app(tmp_path, ("studio", DEAD_URL), ("render-box", "https://abc123-8188.proxy.runpod.net"))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2)
        for width in (80, 120):
            await pilot.resize_terminal(width, 24)
            await pilot.pause(0.1)
            labels = [str(c.label) for c in table.columns.values()]
            assert "URL" in labels, width
            url = table.columns[list(table.columns)[labels.index("URL")]]
            assert url.get_render_width(table) + table.region.x <= width
            assert sum(c.get_render_width(table) for c in table.columns.values()) <= width
        table.focus()
        await pilot.press("slash", *"abc123")
        assert isinstance(app.focused, FilterInput)
        await until(pilot, lambda: table.row_count == 1)
        await pilot.press("escape")
        assert table.row_count == 2


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


async def test_an_update_redraws_its_own_row_and_a_burst_that_narrows_refills_once(tmp_path):
    """Fifty servers: one server's change redraws its row alone; a burst narrowing a column refills once."""
    from pistachio_tui.comfy.session import HEALTH, SessionUpdate
    from pistachio_tui.config import ServerConfig, Settings
    from pistachio_tui.ui.app import PistachioApp
    from pistachio_tui.ui.messages import SessionChanged
    from pistachio_tui.ui.widgets.filter_table import FilterTable

    names = [f"s{n:02d}" for n in range(50)]
    settings = Settings(servers=[ServerConfig(n, DEAD_URL) for n in names], path=tmp_path / "settings.toml")
    app = PistachioApp(settings, health_interval=600)
    async with app.run_test(size=(120, 70)) as pilot:
        sessions = app.manager.sessions
        await until(pilot, lambda: all(s.state == DOWN for s in sessions.values()))
        await app.manager.stop()  # from here on, nothing changes but what the test does
        await pilot.pause(0.2)
        screen, table = app.screen, app.screen.query_one(FilterTable)
        def status_width() -> int:
            return table.ordered_columns[1].content_width

        narrow = status_width()
        added: list[str] = []
        add_row = table.add_row

        def counting(*cells, key=None, **kwargs):
            added.append(key)
            return add_row(*cells, key=key, **kwargs)

        table.add_row = counting

        def change(*changed: str, state: str) -> None:
            for name in changed:
                sessions[name].state = state
                screen.post_message(SessionChanged(SessionUpdate(sessions[name], HEALTH)))

        others = {name: [str(c) for c in table.get_row(name)] for name in names[1:]}
        change("s00", state=CONNECTED)
        await until(pilot, lambda: "connected" in str(table.get_row("s00")[1]))
        assert added == []  # redrawn in place: no row added again
        assert {name: [str(c) for c in table.get_row(name)] for name in names[1:]} == others
        assert status_width() > narrow

        change(*names[:10], state=CONNECTED)  # all as wide as before or wider: in place
        await pilot.pause(0.2)
        assert added == []
        change(*names[:10], state=DOWN)  # narrower: one refill for the whole burst
        await until(pilot, lambda: all("down" in str(table.get_row(n)[1]) for n in names[:10]))
        await pilot.pause(0.2)
        assert sorted(added) == names
        assert status_width() == narrow  # as wide as its cells need again
