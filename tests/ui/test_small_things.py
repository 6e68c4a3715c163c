"""The palette's Screenshot without ~/Downloads; a CPU server's memory is not called VRAM."""

from __future__ import annotations

import json

import platformdirs
from textual.widgets import DataTable

from pistachio_tui.comfy.session import CONNECTED
from pistachio_tui.sim import catalog

from .helpers import make_app, until


async def test_palette_screenshot_works_without_a_downloads_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(platformdirs, "user_downloads_path", lambda: tmp_path / "no-such-Downloads")
    monkeypatch.setenv("PISTACHIO_DATA_DIR", str(tmp_path / "data"))
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Screenshot")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: any(n.title == "Screenshot" for n in app._notifications))
        assert not any(n.severity == "error" for n in app._notifications)
    shots = list((tmp_path / "data" / "screenshots").glob("*.svg"))
    assert len(shots) == 1 and shots[0].read_text().startswith("<svg")


async def test_a_cpu_server_shows_ram_not_vram(sim, tmp_path, monkeypatch):
    stats = catalog.recorded_system_stats()
    stats["devices"] = [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 25 * 2**30,
                         "vram_free": 20 * 2**30, "torch_vram_total": 25 * 2**30, "torch_vram_free": 20 * 2**30}]
    monkeypatch.setattr(catalog, "recorded_system_stats", lambda: json.loads(json.dumps(stats)))
    app = make_app(tmp_path, ("cpu-box", sim.url))
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED and app.manager.active.stats is not None)
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: "none (CPU)" in [str(c) for c in table.get_row("cpu-box")])
        await pilot.press("3")
        await until(pilot, lambda: len(app.manager.active.vram_used) >= 1)
        await pilot.pause(0.3)
        app.screen.refresh_view(None)
        label = str(app.screen.query_one("#vram-label").render())
        assert label.startswith("RAM ") and "VRAM" not in label
