"""80 and 60 columns: every tab stays in the nav bar, the demo label stays, Queue's detail opens in place."""

from __future__ import annotations

from textual.widgets import Tab

from pistachio_tui.comfy.session import CONNECTED
from pistachio_tui.ui.widgets.filter_table import FilterTable
from pistachio_tui.ui.widgets.nav_bar import SCREENS, NavBar, tab_labels

from .helpers import DEAD_URL, fresh_prompt, make_app, until


def test_tab_labels_always_fit_and_keep_the_current_name():
    for width in (40, 56, 60, 70, 80, 120):
        for mode, label in SCREENS:
            labels = tab_labels(mode, width)
            assert len(labels) == len(SCREENS)
            assert sum(len(t) + 2 for t in labels) <= width or labels == [str(n) for n in range(1, len(SCREENS) + 1)]
    assert tab_labels("queue", 60)[2] == "3 Queue"
    assert tab_labels("queue", 100)[1] == "2 Workflows"


async def test_every_tab_is_on_screen_at_60_columns(tmp_path):
    app = make_app(tmp_path, ("studio", DEAD_URL), demo_label="SIMULATED ComfyUI — demo, no real GPU")
    async with app.run_test(size=(60, 20)) as pilot:
        for key in "123456789"[: len(SCREENS)]:
            await pilot.press(key)
            await pilot.pause(0.1)
            tabs = list(app.screen.query_one(NavBar).query(Tab))
            assert len(tabs) == len(SCREENS)
            assert all(tab.region.right <= 60 and tab.region.width > 0 for tab in tabs), key
        header = str(app.screen.query_one("StatusHeader").render())
        assert header.strip().startswith("SIMULATED ComfyUI") and "studio" in header


async def test_narrow_queue_opens_the_detail_in_place_of_the_lists(sim, tmp_path):
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        session = app.manager.active
        await session.submit(fresh_prompt(sim, 5))
        await until(pilot, lambda: len(session.history) == 1)
        await pilot.press("3")
        history = app.screen.query_one("#history", FilterTable)
        await until(pilot, lambda: history.row_count == 1)
        detail = app.screen.query_one("#detail")
        assert not detail.display or detail.region.width == 0
        history.focus()
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert detail.region.width == 80 and history.region.width == 0
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert history.region.width == 80 and app.focused is history
