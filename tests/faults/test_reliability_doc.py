"""docs/reliability.md stays true: every row of its tables names a test, and every test it
names exists (a renamed or deleted test would otherwise leave the page promising it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "reliability.md"
NAME = re.compile(r"`(test_\w+)(?:\[[^\]`]*\])?`")


def _defined_tests() -> set[str]:
    found = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        found.update(re.findall(r"^\s*(?:async\s+)?def (test_\w+)\(", path.read_text(encoding="utf-8"), re.M))
    return found


def _rows(text: str) -> list[str]:
    """The data rows of every table: its lines after the header and the |---| line."""
    rows: list[str] = []
    table: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
        else:
            rows += table[2:]
            table = []
    return rows


def test_every_test_the_page_names_exists():
    named = set(NAME.findall(DOC.read_text(encoding="utf-8")))
    assert len(named) > 40
    missing = sorted(named - _defined_tests())
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"


def test_every_row_names_a_test():
    rows = _rows(DOC.read_text(encoding="utf-8"))
    assert len(rows) > 40
    bare = [row[:80] for row in rows if not NAME.search(row)]
    assert not bare, f"rows without a test: {bare}"
