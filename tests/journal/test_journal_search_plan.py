"""Searches of a large journal walk an index in the result's order and stop at the page's end.

At 100,000 prompts a plan that collects every match and sorts them costs
100-600 ms; walking an index costs about 10 (benchmarks/bench_journal.py).
The plans are checked here, on a small journal, so the test stays fast.
"""

from __future__ import annotations

import pytest

from pistachio_tui.journal import Journal, JournalEntry


def search_and_plan(tmp_path, search) -> tuple[list[JournalEntry], str]:
    """The entries ``search`` finds in a small journal, and SQLite's plan for the query it ran."""
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.record([JournalEntry(f"http://{'ab'[n % 2]}:8188", f"p{n}", "success",
                                     positive=f"portrait castle {n}", queued_at=float(n)) for n in range(200)],
                       now=1000.0)
        executed: list[str] = []
        journal._db.set_trace_callback(executed.append)
        found = journal.search(**search)
        journal._db.set_trace_callback(None)
        select = next(sql for sql in executed if sql.lstrip().startswith("SELECT"))
        plan = " | ".join(row[3] for row in journal._db.execute("EXPLAIN QUERY PLAN " + select))
    return found, plan


@pytest.mark.parametrize("search", [
    {"text": "portrait"},
    {"server": "http://a:8188"},
    {"status": "success"},
    {"text": "castle", "server": "http://a:8188"},
    {},
])
def test_search_walks_the_newest_first_index_without_sorting(tmp_path, search):
    found, plan = search_and_plan(tmp_path, search)
    assert found
    assert "prompts_seen" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("search", [{"since": 100.0}, {"until": 150.0}, {"since": 50.0, "until": 150.0, "text": "castle"}])
def test_a_date_range_walks_the_date_index_without_sorting(tmp_path, search):
    found, plan = search_and_plan(tmp_path, search)
    assert found
    assert [entry.queued_at for entry in found] == sorted((entry.queued_at for entry in found), reverse=True)
    assert "prompts_when" in plan and "TEMP B-TREE" not in plan, plan
