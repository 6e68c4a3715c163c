"""The History screen: journal search by words and seed, re-queue of a lost prompt, escaped names, a snapshot."""

from __future__ import annotations

import time

import pytest
from textual.widgets import DataTable, Input

from pistachio_tui.comfy.session import CONNECTED, DOWN
from pistachio_tui.config import journal_path
from pistachio_tui.journal import Journal, JournalEntry
from pistachio_tui.ui.history.query import QueryError, parse_query
from pistachio_tui.ui.history.screen import HistoryScreen

from .helpers import DEAD_URL, fresh_prompt, make_app, until

#: 2026-11-30 10:00 UTC: entries from a fixed past, so the table reads the same every run.
T0 = 1_796_032_800.0


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def ksampler_prompt(seed: int, text: str, lora: str = "detail.safetensors") -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "[Pony] x.safetensors"}},
        "2": {"class_type": "LoraLoader", "inputs": {"lora_name": lora, "model": ["1", 0], "clip": ["1", 1],
                                                     "strength_model": 1.0, "strength_clip": 1.0}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["2", 1]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["2", 1]}},
        "5": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": 20, "cfg": 7.0, "model": ["2", 0],
                                                   "positive": ["3", 0], "negative": ["4", 0]}},
    }


def write_entries(url: str) -> None:
    entries = [
        JournalEntry(url, "a1" * 16, "success", ksampler_prompt(111, "a red fox in snow"), workflow="fox.json",
                     queued_at=T0, started_at=T0 + 1, finished_at=T0 + 13, outputs=("fox_00001_.png",)),
        JournalEntry(url, "b2" * 16, "error", ksampler_prompt(222, "[castle] on a hill, golden hour"),
                     workflow="castle.json", queued_at=T0 + 60, started_at=T0 + 61, finished_at=T0 + 64,
                     error="out of memory while decoding"),
        JournalEntry(url, "c3" * 16, "lost", ksampler_prompt(333, "a blue fox at night"), queued_at=T0 + 120),
        JournalEntry(url, "d4" * 16, "success", workflow="elsewhere.json", queued_at=T0 + 180, started_at=T0 + 181,
                     finished_at=T0 + 190, outputs=("x.png", "y.png")),
    ]
    with Journal(journal_path()) as journal:
        journal.record(entries, now=T0 + 200)
        for i, entry in enumerate(entries):  # newest first is by when the journal saw them
            journal.record([entry], now=T0 + 200 + i)


def prompt_ids(screen: HistoryScreen) -> list[str]:
    return [entry.prompt_id[:2] for entry in screen.entries.values()]


async def open_history(pilot, app) -> HistoryScreen:
    await pilot.press("9")
    screen = app.screen
    assert isinstance(screen, HistoryScreen)
    return screen


async def type_search(pilot, screen: HistoryScreen, text: str, expect: list[str]) -> None:
    search = screen.query_one("#history-search", Input)
    search.focus()
    search.value = text
    await until(pilot, lambda: prompt_ids(screen) == expect)


def test_query_tokens_become_search_filters():
    query = parse_query("fox seed:12 server:studio status:LOST since:2026-11-30 until:2026-11-30 night",
                        {"studio": "http://h:8188"})
    kwargs = query.kwargs()
    assert kwargs["text"] == "fox night" and kwargs["seed"] == 12 and kwargs["server"] == "http://h:8188"
    assert kwargs["status"] == "lost" and kwargs["until"] - kwargs["since"] == 86400
    assert parse_query("server:http://other:8188", {}).kwargs()["server"] == "http://other:8188"
    assert parse_query("note:this", {}).kwargs()["text"] == "note:this"
    with pytest.raises(QueryError, match="seed:abc"):
        parse_query("seed:abc", {})
    with pytest.raises(QueryError, match="since:yesterday"):
        parse_query("since:yesterday", {})


async def test_search_by_words_and_seed_finds_the_right_rows(tmp_path):
    write_entries(DEAD_URL)
    app = make_app(tmp_path, ("studio", DEAD_URL))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_history(pilot, app)
        await until(pilot, lambda: prompt_ids(screen) == ["d4", "c3", "b2", "a1"])
        await type_search(pilot, screen, "fox", ["c3", "a1"])
        await type_search(pilot, screen, "fox night", ["c3"])
        await type_search(pilot, screen, "seed:222", ["b2"])
        await type_search(pilot, screen, "status:lost server:studio", ["c3"])
        await type_search(pilot, screen, "detail seed:111", ["a1"])
        await type_search(pilot, screen, "since:2099-01-01", [])
        await type_search(pilot, screen, "seed:x", [])
        assert "seed:x is not a whole number" in str(screen.query_one("#history-summary").render())
        await type_search(pilot, screen, "castle", ["b2"])
        await pilot.press("escape")
        assert isinstance(app.focused, DataTable), "Esc leaves the search box for the results"
        detail = str(screen.query_one("#history-detail-text").render())
        assert "[castle] on a hill" in detail and "[Pony] x.safetensors" in detail
        assert "out of memory while decoding" in detail
        table = screen.query_one("#history-results", DataTable)
        assert str(table.get_cell_at((0, 3))) == "[castle] on a hill, golde…", "cut to fit, brackets kept"


async def test_requeue_without_a_kept_prompt_or_a_server_is_explained(tmp_path):
    write_entries(DEAD_URL)
    app = make_app(tmp_path)
    toasts: list[str] = []
    app.notify = lambda message, **_: toasts.append(message)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_history(pilot, app)
        await type_search(pilot, screen, "elsewhere", ["d4"])
        await pilot.press("escape", "r")
        assert "cannot be queued again" in toasts[-1]
        await type_search(pilot, screen, "castle", ["b2"])
        await pilot.press("escape", "r")
        assert "No server yet" in toasts[-1]


async def test_a_prompt_lost_in_a_restart_is_listed_and_queued_again(tmp_path):
    from pistachio_tui.sim.server import SimServer

    slow = SimServer(step_delay=0.05)
    await slow.start()
    app = make_app(tmp_path, ("slow", slow.url))
    toasts: list[str] = []
    app.notify = lambda message, **_: toasts.append(message)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            session = app.manager.active
            await until(pilot, lambda: session.state == CONNECTED and app.journal is not None)
            state = await session.submit(fresh_prompt(slow, 9191))
            await until(pilot, lambda: state.value > 0)
            await slow.restart(0.05)
            await until(pilot, lambda: state.lost)
            screen = await open_history(pilot, app)
            await type_search(pilot, screen, "seed:9191 status:lost", [state.prompt_id[:2]])
            assert str(screen.query_one("#history-results", DataTable).get_cell_at((0, 1))) == "lost"
            assert screen.entries[f"{slow.url} {state.prompt_id}"].queued_at, "first seen in the queue: its time"
            await until(pilot, lambda: session.state == CONNECTED)
            await pilot.press("escape", "r")
            await until(pilot, lambda: any("queued again" in t for t in toasts))
            new_id = next(t for t in toasts if "queued again" in t).rsplit(" ", 1)[-1]
            assert new_id != state.prompt_id and f"{state.prompt_id[:8]} queued again on slow" in toasts[-1]
            await until(pilot, lambda: new_id in session.history, timeout=20)
            assert session.history[new_id].outcome == "success"
            await type_search(pilot, screen, "seed:9191", [new_id[:2], state.prompt_id[:2]])
            await until(pilot, lambda: screen.entries[f"{slow.url} {new_id}"].status == "success")
    finally:
        await slow.stop()


def test_history_snapshot(snap_compare, tmp_path, utc, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_entries(DEAD_URL)
    app = make_app(tmp_path, ("studio", DEAD_URL))

    async def run_before(pilot) -> None:
        await until(pilot, lambda: app.manager.active.state == DOWN)
        screen = await open_history(pilot, app)
        await until(pilot, lambda: len(screen.entries) == 4)
        await pilot.press("escape", "down")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
