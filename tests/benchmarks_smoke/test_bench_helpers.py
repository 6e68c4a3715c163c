"""The benchmark helpers that lean on Textual internals or shape the results people compare."""

from __future__ import annotations

import json

from textual.widgets import DataTable

from benchmarks.__main__ import compare
from benchmarks.common import Figure, format_table
from benchmarks.headless import RedrawCounter, minimal_app


async def test_redraw_counter_counts_frames_not_refresh_calls():
    # The counter hooks a private Textual method: if a Textual upgrade renames it,
    # this fails instead of the benchmark quietly reporting 0 redraws per second.
    app = minimal_app()
    async with app.run_test(size=(60, 10)) as pilot:
        counter = RedrawCounter(app)
        table = app.query_one(DataTable)
        for n in range(50):
            table.add_row(f"s{n}", "connected", str(n))
        await pilot.pause()
        await pilot.pause()
        assert 1 <= counter.count < 50


def test_table_and_compare_show_yardstick_and_ratio(tmp_path):
    figures = [Figure("start", 2.0, "s", "minimal app", 0.5, note="lower is better"), Figure("size", 3.0, "KiB")]
    table = format_table(figures)
    assert "0.5 (minimal app)" in table and "4×" in table and "lower is better" in table
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps([f.as_dict() for f in figures]))
    figures[0].value = 1.0
    b.write_text(json.dumps([f.as_dict() for f in figures]))
    row = next(line for line in compare(a, b).splitlines() if line.startswith("start"))
    assert row.split()[-1] == "0.5×"
