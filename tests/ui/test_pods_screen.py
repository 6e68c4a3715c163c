"""Pods screen against the fake RunPod API: list, stop, terminate with the typed name, add as server."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input

from pistachio_tui.ui.screens.confirm import AskScreen
from tests.runpod.fake_graphql import FakeRunPod

from .helpers import make_app, until


@pytest.fixture
async def fake_runpod(monkeypatch):
    async with FakeRunPod() as fake:
        monkeypatch.setenv("RUNPOD_API_URL", fake.url)
        monkeypatch.setenv("RUNPOD_API_KEY", fake.api_key)
        yield fake


def status_of(fake, pod_id: str) -> str:
    return next(p for p in fake.pods if p["id"] == pod_id)["desiredStatus"]


async def test_pods_list_stop_terminate_and_add_server(fake_runpod, tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("7")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == len(fake_runpod.pods))
        first = app.screen._selected()
        assert "Balance $25.00" in str(app.screen.query_one("#pods-account").render())

        await pilot.press("c")
        assert first.comfy_url in [s.url for s in app.settings.servers]

        await pilot.press("p", "y")
        await until(pilot, lambda: status_of(fake_runpod, first.id) == "EXITED")

        target = app.screen._selected()
        await pilot.press("T")
        assert isinstance(app.screen, AskScreen)
        app.screen.query_one(Input).value = "wrong name"
        await pilot.press("enter")
        await until(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        assert any(p["id"] == target.id for p in fake_runpod.pods)
        await pilot.press("T")
        app.screen.query_one(Input).value = target.name
        await pilot.press("enter")
        await until(pilot, lambda: all(p["id"] != target.id for p in fake_runpod.pods))


async def test_pods_without_a_key_say_how_to_set_one(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        await pilot.pause()
        assert "RUNPOD_API_KEY" in str(app.screen.query_one("#pods-account").render())
