"""80 and 60 columns: every tab stays in the nav bar, the footer shows whole keys, the demo label stays,
Queue's detail opens in place."""

from __future__ import annotations

from textual.widgets import Tab
from textual.widgets._footer import FooterKey

from pistachio_tui.comfy.session import CONNECTED
from pistachio_tui.ui.widgets.filter_table import FilterTable
from pistachio_tui.ui.widgets.fitted_footer import FittedFooter, fitting, key_width
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


def test_the_footer_keeps_whole_keys_in_order_and_always_the_help_key():
    keys = [FooterKey(k, k, d, a) for k, d, a in
            [("/", "Filter", "filter"), ("a", "Add", "add"), ("e", "Edit", "edit"), ("?", "Help", "help"),
             ("q", "Quit", "quit")]]
    assert fitting(keys, 100) == keys
    help_key = keys[3]
    # "/ Filter " and "? Help " take 9 and 7 columns: "a Add " (6) fills the 22 after them, "e Edit " (7) is left out.
    assert [k.action for k in fitting(keys, 22)] == ["filter", "add", "help"]
    assert sum(key_width(k) for k in fitting(keys, 22)) <= 22
    assert fitting(keys, 3) == [help_key]


async def footer_keys(pilot, app):
    await pilot.pause(0.1)
    footer = app.screen.query_one(FittedFooter)
    await until(pilot, lambda: any(k.action == "help" for k in footer.query(FooterKey)))
    keys = list(footer.query(FooterKey))
    [palette] = [k for k in keys if k.has_class("-command-palette")]
    return [k for k in keys if k is not palette], palette


async def test_at_80_columns_every_screen_shows_whole_keys_and_help(tmp_path):
    app = make_app(tmp_path, ("studio", DEAD_URL))
    async with app.run_test(size=(80, 24)) as pilot:
        for key in "123456789"[: len(SCREENS)]:
            await pilot.press(key)
            keys, palette = await footer_keys(pilot, app)
            assert all(k.region.right <= palette.region.x for k in keys), key
            assert any(k.action == "help" for k in keys), key


async def test_a_wider_terminal_brings_back_the_keys_left_out(tmp_path):
    app = make_app(tmp_path, ("studio", DEAD_URL))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        narrow, _ = await footer_keys(pilot, app)
        await pilot.resize_terminal(200, 40)
        await until(pilot, lambda: len(list(app.screen.query(FooterKey))) > len(narrow) + 1)
        wide, palette = await footer_keys(pilot, app)
        assert [k.action for k in wide][-2:] == ["help", "quit"]
        assert all(k.region.right <= palette.region.x for k in wide)


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
