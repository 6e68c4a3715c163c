"""Pods screen against the fake RunPod API: the hosted view lists pods and hands servers to the app."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from pistachio_tui.config import load_settings
from pistachio_tui.sim.runpod import FakeRunPod

from .helpers import make_app, until


@pytest.fixture
async def fake_runpod(monkeypatch):
    async with FakeRunPod() as fake:
        monkeypatch.setenv("RUNPOD_API_URL", fake.url)
        monkeypatch.setenv("RUNPOD_API_KEY", fake.api_key)
        yield fake


async def test_pods_listed_and_added_as_server(fake_runpod, tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("7")
        table = app.screen.query_one("#pods-table", DataTable)
        await until(pilot, lambda: table.row_count == len(fake_runpod.pods))
        table.focus()
        await pilot.press("a")
        await until(pilot, lambda: bool(app.manager.sessions))
        added = next(iter(app.manager.sessions.values())).config
        assert "RunPod" in added.name
        assert [s.url for s in load_settings(app.settings.path).servers] == [added.url]
        assert app.manager.active_name == added.name


async def test_pods_without_a_key_say_how_to_set_one(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        await pilot.pause(0.3)
        texts = " ".join(str(w.render()) for w in app.screen.query("#pods-view Static"))
        assert "RUNPOD_API_KEY" in texts


async def test_dashboard_shows_pod_spend(fake_runpod, tmp_path):
    app = make_app(tmp_path, dashboard=True)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.screen.query_one("#dash-pods")
        await until(pilot, lambda: "running" in str(panel.render()))
        assert "Balance $25.00" in str(panel.render())


async def test_pods_screen_and_dashboard_share_one_monitor(fake_runpod, tmp_path):
    from pistachio_tui.ui.pods.view import PodsView

    app = make_app(tmp_path, dashboard=True)
    async with app.run_test(size=(120, 30)) as pilot:
        panel = app.screen.query_one("#dash-pods")
        await until(pilot, lambda: "running" in str(panel.render()))
        monitor = app.runpod()
        await pilot.press("7")
        view = app.screen.query_one(PodsView)
        await until(pilot, lambda: view.state is not None)
        assert view.monitor is monitor and view.client is monitor.client, "one client, one idle guard"
        assert not monitor.client._http.is_closed
    assert monitor.client._http.is_closed, "the app closes the shared client when it quits"


async def focused_pods_table(pilot):
    """Go to Pods, wait for the fake account's three pods, focus their table."""
    from pistachio_tui.ui.widgets.filter_table import FilterTable

    await pilot.press("7")
    table = pilot.app.screen.query_one("#pods-table", FilterTable)
    await until(pilot, lambda: table.row_count == 3)
    table.focus()
    return table


async def test_slash_filters_the_pods_sorts_and_escape_clears(fake_runpod, tmp_path):
    from pistachio_tui.ui.widgets.filter_table import FilterInput

    app = make_app(tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        table = await focused_pods_table(pilot)
        await pilot.press("slash", *"a40")
        assert isinstance(app.focused, FilterInput)
        await until(pilot, lambda: table.shown_keys == ["ghi789rst"])
        await pilot.press("enter")
        assert app.focused is table and table.row_count == 1, "Enter keeps the filter"
        assert app.screen.query_one("#pods-view").selected().name == "old-a40", "actions act on the row shown"
        await pilot.press("escape")
        assert table.row_count == 3 and not app.screen.query(FilterInput)
        await pilot.press("greater_than_sign", "greater_than_sign", "greater_than_sign", "greater_than_sign",
                          "greater_than_sign")
        assert table.sort_column == 4 and "$/h" in str(table.border_subtitle)
        assert table.shown_keys == ["ghi789rst", "abc123xyz", "def456uvw"], "cheapest first"
        await pilot.press("equals_sign")
        assert table.shown_keys == ["def456uvw", "abc123xyz", "ghi789rst"]
        await pilot.press("escape", "1")
        assert app.current_mode == "servers", "Esc with no filter leaves the keys to the screen"


async def test_stop_asks_first_and_no_keeps_the_pod_running(fake_runpod, tmp_path):
    from pistachio_tui.ui.dialogs import YesNo

    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await focused_pods_table(pilot)
        table.move_cursor(row=table.shown_keys.index("abc123xyz"))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, YesNo))
        question = " ".join(str(w.render()) for w in app.screen.query("Label, Static"))
        assert "comfy-4090" in question and "$0.69/h" in question, "what stops, and what it costs meanwhile"
        await pilot.press("n")
        await pilot.pause(0.3)
        assert fake_runpod.pod("abc123xyz")["desiredStatus"] == "RUNNING"
        assert "podStop" not in fake_runpod.operations()
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, YesNo))
        await pilot.press("y")
        await until(pilot, lambda: fake_runpod.pod("abc123xyz")["desiredStatus"] == "EXITED")


async def test_a_rejected_key_replaces_connecting_with_what_happened(fake_runpod, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", "not-the-key")
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        account = app.screen.query_one("#pods-account")
        await until(pilot, lambda: "Connecting" not in str(account.render()))
        assert "RunPod" in str(account.render())
