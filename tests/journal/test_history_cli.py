"""``pistachio history`` reads the journal the app writes."""

from __future__ import annotations

import json
from datetime import datetime

from pistachio_tui.cli import exit_codes, main
from pistachio_tui.config import journal_path
from pistachio_tui.journal import Journal, JournalEntry
from tests.journal.test_journal import prompt


def fill():
    day = datetime(2026, 11, 20, 12).timestamp()
    with Journal(journal_path()) as journal:
        journal.record([
            JournalEntry("http://127.0.0.1:8188", "aaaa1111", "success", prompt(7, "a [Pony] in a field"),
                         workflow="ponies.json", queued_at=day, started_at=day, finished_at=day + 9,
                         outputs=("p_00001_.png",)),
            JournalEntry("http://pod:8188", "bbbb2222", "lost", prompt(8, "a lighthouse at night"),
                         queued_at=day + 86400),
        ])


def test_search_prints_readable_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PISTACHIO_DATA_DIR", str(tmp_path))
    fill()
    assert main(["history", "--search", "field"]) == exit_codes.OK
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "aaaa1111" in out[0] and "a [Pony] in a field" in out[0] and "9s" in out[0]


def test_json_and_filters(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PISTACHIO_DATA_DIR", str(tmp_path))
    fill()
    assert main(["history", "--json", "--since", "2026-11-21"]) == exit_codes.OK
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["prompt_id"] == "bbbb2222" and row["status"] == "lost" and row["seed"] == 8
    assert main(["history", "--json", "--server", "http://127.0.0.1:8188/", "--seed", "7"]) == exit_codes.OK
    assert [json.loads(x)["prompt_id"] for x in capsys.readouterr().out.splitlines()] == ["aaaa1111"]


def test_bad_dates_and_no_journal_yet(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PISTACHIO_DATA_DIR", str(tmp_path))
    assert main(["history"]) == exit_codes.OK
    assert "no prompt seen yet" in capsys.readouterr().err
    fill()
    assert main(["history", "--since", "last tuesday"]) == exit_codes.USAGE
    assert "YYYY-MM-DD" in capsys.readouterr().err
