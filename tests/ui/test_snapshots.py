"""Snapshots of every screen at 80×24 and 120×40 against a server that is deterministically down.

A down server makes every shot repeatable (no live numbers, clocks or spinners)
while still exercising the real session code. Update with ``--snapshot-update``.
"""

from __future__ import annotations

import pytest

from pistachio_tui.comfy.session import DOWN
from pistachio_tui.ui.workflows.screen import WorkflowsScreen
from pistachio_tui.ui.workflows.sources import bundled_dir

from .helpers import DEAD_URL, make_app, until

SIZES = [(80, 24), (120, 40)]
KEYS = {"servers": "1", "workflows": "2", "queue": "3", "gpu": "4", "fix": "5", "training": "6", "pods": "7",
        "batch": "8"}


@pytest.fixture(autouse=True)
def relative_config_dir(tmp_path, monkeypatch):
    """Messages that name the config or data dir (where a RunPod key or a batch goes) read the same on every machine."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PISTACHIO_CONFIG_DIR", "pistachio-config")
    monkeypatch.setenv("PISTACHIO_DATA_DIR", "pistachio-data")


def settled(app):
    async def run_before(pilot) -> None:
        await until(pilot, lambda: app.manager.active.state == DOWN)
        await pilot.pause(0.3)
    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("mode", list(KEYS))
def test_screen_snapshot(snap_compare, tmp_path, mode, size):
    app = make_app(tmp_path, ("studio", DEAD_URL))
    settle = settled(app)

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press(KEYS[mode])
        if mode == "workflows":
            screen = app.screen
            assert isinstance(screen, WorkflowsScreen)
            screen.open_workflow(bundled_dir() / "sdxl_txt2img.json")
            await until(pilot, lambda: screen.preview is not None)
            await until(pilot, lambda: "(0)" in str(screen._server_node.label))
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES + [(200, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard_snapshot(snap_compare, tmp_path, size):
    app = make_app(tmp_path, ("studio", DEAD_URL), ("render-box", DEAD_URL), dashboard=True)
    assert snap_compare(app, terminal_size=size, run_before=settled(app))


def test_help_snapshot(snap_compare, tmp_path):
    app = make_app(tmp_path, ("studio", DEAD_URL))
    settle = settled(app)

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
