"""Queue and history rows a person can read; a thumbnail per prompt; filter and sort the lists."""

from __future__ import annotations

from textual.widgets import Input

from pistachio_tui.comfy.session import CONNECTED
from pistachio_tui.ui.widgets.filter_table import FilterInput, FilterTable
from pistachio_tui.ui.widgets.output_preview import OutputPreview

from .helpers import make_app, until
from .test_queue_flow import open_by_path, sim_workflow


def row_texts(table: FilterTable) -> list[list[str]]:
    return [[getattr(c, "plain", str(c)) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def queue_two(pilot, sim, tmp_path, *, fail_second: bool):
    """Queue a good prompt (seed 111), then one that fails (or succeeds) with seed 222."""
    app = pilot.app
    screen = await open_by_path(pilot, sim_workflow(tmp_path))
    seed = next(i for i in screen.query(".param").results(Input) if i.value == "156680208700286")
    await pilot.press("2")
    seed.value = "111"
    screen.query_one("#seed-mode").value = "fixed"
    session = app.manager.active
    await pilot.press("g")
    await until(pilot, lambda: len(session.history) == 1)
    if fail_second:
        sim.fail_class("VAEDecode", "out of memory")
    seed.value = "222"
    await pilot.press("g")
    await until(pilot, lambda: len(session.history) == 2)
    await pilot.press("3")
    history = app.screen.query_one("#history", FilterTable)
    await until(pilot, lambda: history.row_count == 2)
    return history


def ok_and_failed(session) -> tuple[str, str]:
    """The ids of the prompt that succeeded and of the one that failed (``queue_two(fail_second=True)``)."""
    outcomes = {e.outcome: k for k, e in session.history.items()}
    return outcomes["success"], outcomes["error"]


async def test_rows_name_the_workflow_prompt_and_seed_and_show_a_thumbnail(sim, tmp_path):
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        history = await queue_two(pilot, sim, tmp_path, fail_second=False)
        rows = row_texts(history)
        assert {r[3] for r in rows} == {"111", "222"}
        assert all(r[1] == "sim_txt2img" for r in rows)
        assert all(r[2].startswith("a pistachio tree") for r in rows)
        history.focus()
        history.move_cursor(row=0)
        preview = app.screen.query_one(OutputPreview)
        await until(pilot, lambda: "thumbnail" in str(preview.query_one(".caption").render()))
        data = next(iter(app.screen._thumbnails.values()))
        assert data[:4] == b"RIFF" and data[8:12] == b"WEBP", "the server's webp;50 preview, not the PNG"


async def test_a_prompt_without_outputs_shows_no_previous_image(sim, tmp_path):
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        history = await queue_two(pilot, sim, tmp_path, fail_second=True)
        session = app.manager.active
        ok, failed = ok_and_failed(session)
        history.focus()
        history.move_cursor(row=history.shown_keys.index(ok))
        await pilot.press("v")
        preview = app.screen.query_one(OutputPreview)
        await until(pilot, lambda: "PNG" in str(preview.query_one(".caption").render()))
        history.move_cursor(row=history.shown_keys.index(failed))
        await pilot.pause(0.2)
        assert str(preview.query_one(".caption").render()) == ""
        assert not preview.query(".picture")


async def test_slash_filters_sorts_and_escape_clears(sim, tmp_path):
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        history = await queue_two(pilot, sim, tmp_path, fail_second=True)
        history.focus()
        await pilot.press("slash", *"err")
        assert isinstance(app.focused, FilterInput)
        await until(pilot, lambda: history.row_count == 1)
        assert row_texts(history)[0][0] == "error"
        await pilot.press("enter")
        assert app.focused is history and history.row_count == 1, "Enter keeps the filter"
        await pilot.press("escape")
        assert history.row_count == 2 and not app.screen.query(FilterInput)
        await pilot.press("greater_than_sign", "greater_than_sign", "greater_than_sign", "greater_than_sign")
        assert history.sort_column == 3
        assert [r[3] for r in row_texts(history)] == ["111", "222"]
        await pilot.press("equals_sign")
        assert [r[3] for r in row_texts(history)] == ["222", "111"]
        assert "Seed" in str(history.border_subtitle)
        await pilot.press("escape", "1")
        assert app.current_mode == "servers", "Esc with no filter leaves the keys to the screen"


async def test_rows_carry_a_colour_swatch_of_their_first_image(sim, tmp_path):
    """The newest prompts' first images are fetched small and shown as a few coloured cells on the row."""
    from rich.text import Text

    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        history = await queue_two(pilot, sim, tmp_path, fail_second=True)
        session = app.manager.active
        ok, failed = ok_and_failed(session)

        def out_cell(key: str) -> Text:
            return history.get_row(key)[-1]

        await until(pilot, lambda: "▀" in out_cell(ok).plain)
        swatch = out_cell(ok)
        assert swatch.plain == "▀▀▀ 1", "three cells of colour, then the count"
        styles = {span.style.bgcolor for span in swatch.spans if span.style.bgcolor is not None}
        assert styles, "the cells are painted with the image's colours"
        assert out_cell(failed).plain == "0", "no image, no swatch"
