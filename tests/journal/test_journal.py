"""The prompt journal: what it keeps, how it is searched, and that it stays bounded."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from pistachio_tui.comfy.types import HistoryEntry
from pistachio_tui.journal import Journal, JournalEntry, JournalError, describe_prompt, from_history
from tests.conftest import load_fixture


def prompt(seed=42, text="a cat in a hat", lora="[Pony] style.safetensors"):
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl/base.safetensors"}},
        "5": {"class_type": "LoraLoader", "inputs": {"lora_name": lora, "strength_model": 0.8, "strength_clip": 1,
                                                     "model": ["4", 0], "clip": ["4", 1]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["5", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["5", 1]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": 20, "cfg": 7, "sampler_name": "euler",
                                                   "scheduler": "normal", "denoise": 1, "model": ["5", 0],
                                                   "positive": ["6", 0], "negative": ["7", 0],
                                                   "latent_image": ["8", 0]}},
    }


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "j.sqlite3") as j:
        yield j


def test_a_prompt_is_described_by_its_seed_text_and_models():
    assert describe_prompt(prompt()) == (42, "a cat in a hat", ("sdxl/base.safetensors", "[Pony] style.safetensors"))


def test_record_and_get_keep_everything_needed_to_run_it_again(journal):
    journal.record([JournalEntry("local", "p1", "success", prompt(), workflow="cats.json", started_at=10.0,
                                 finished_at=14.5, outputs=("ComfyUI_00001_.png",))])
    entry = journal.get("local", "p1")
    assert entry is not None and entry.prompt == prompt() and entry.duration == 4.5
    assert (entry.seed, entry.positive, entry.workflow) == (42, "a cat in a hat", "cats.json")
    assert entry.models == ("sdxl/base.safetensors", "[Pony] style.safetensors")
    assert journal.get("other", "p1") is None


def test_a_finished_prompt_is_never_revived_by_a_late_live_update(journal):
    journal.record([JournalEntry("s", "p", "queued", prompt(), queued_at=1.0)])
    journal.record([JournalEntry("s", "p", "success", {}, finished_at=3.0, outputs=("a.png",))])
    journal.record([JournalEntry("s", "p", "running", {})])
    entry = journal.get("s", "p")
    assert entry.status == "success" and entry.outputs == ("a.png",) and entry.queued_at == 1.0
    assert entry.prompt == prompt(), "an update without the prompt keeps the one recorded"


def test_search_by_words_seed_server_status_and_date(journal):
    journal.record([JournalEntry("local", "a", "success", prompt(1, "red fox at dawn"), queued_at=100.0),
                    JournalEntry("pod", "b", "error", prompt(2, "blue whale"), queued_at=200.0),
                    JournalEntry("pod", "c", "success", prompt(3, "red panda", lora="flat.safetensors"),
                                 workflow="animals.json", queued_at=300.0)])
    ids = lambda found: [e.prompt_id for e in found]  # noqa: E731
    assert ids(journal.search("red")) == ["c", "a"]
    assert ids(journal.search("red fox")) == ["a"]
    assert ids(journal.search("pon")) == ["b", "a"], "a LoRA's name is searchable by prefix"
    assert ids(journal.search("animals")) == ["c"]
    assert ids(journal.search(seed=2)) == ["b"]
    assert ids(journal.search(server="pod", status="success")) == ["c"]
    assert ids(journal.search(since=150, until=300)) == ["b"]
    assert ids(journal.search('"); DROP TABLE prompts; --')) == []
    assert journal.count() == 3


def test_the_journal_is_bounded(tmp_path):
    with Journal(tmp_path / "j.sqlite3", max_entries=10, keep_days=1) as journal:
        journal.record([JournalEntry("s", f"p{i}", "success", prompt(i)) for i in range(15)], now=1_000_000.0)
        assert journal.prune(now=1_000_000.0) == 5 and journal.count() == 10
        assert journal.get("s", "p0") is None and journal.get("s", "p14") is not None
        assert journal.prune(now=1_000_000.0 + 2 * 86400) == 10 and journal.count() == 0
        assert journal.search("cat") == []


def test_history_entries_from_a_real_server_are_journaled(journal):
    history = load_fixture("history_all")
    entries = [from_history("real", HistoryEntry.from_wire(pid, data)) for pid, data in history.items()]
    journal.record(entries)
    assert journal.count() == len(history) > 0
    for entry in entries:
        assert journal.get("real", entry.prompt_id).status in {"success", "error", "interrupted"}


def test_writers_on_several_threads_lose_nothing(journal):
    def write(n):
        for i in range(50):
            journal.record([JournalEntry("s", f"{n}-{i}", "success", prompt(i))])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert journal.count() == 200


def test_a_file_that_is_not_a_journal_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "j.sqlite3"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalError, match="move the file aside"):
        Journal(path)


def test_a_second_reader_sees_what_the_first_wrote(tmp_path):
    with Journal(tmp_path / "j.sqlite3") as writer, Journal(tmp_path / "j.sqlite3") as reader:
        writer.record([JournalEntry("s", "p", "success", prompt())])
        assert reader.get("s", "p") is not None
    assert sqlite3.connect(tmp_path / "j.sqlite3").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_word_search_lists_the_newest_seen_first_up_to_the_limit(journal):
    # Prompt 0 is queued first but finishes last: it is the newest seen and must lead, even with a limit.
    journal.record([JournalEntry("s", str(n), "queued", prompt(n, "red fox")) for n in range(5)], now=10.0)
    journal.record([JournalEntry("s", str(n), "success") for n in (3, 1, 0)], now=20.0)
    journal.record([JournalEntry("s", "0", "success", finished_at=30.0)], now=30.0)
    assert [e.prompt_id for e in journal.search("fox", limit=3)] == ["0", "3", "1"]
    assert [e.prompt_id for e in journal.search(status="success", limit=2)] == ["0", "3"]


def test_a_search_leaves_the_api_prompts_out_and_prompt_of_reads_one(journal):
    journal.record([JournalEntry("s", "kept", "success", prompt(7)),
                    JournalEntry("s", "seen-late", "success", {}, positive="a cat", seed=8)])
    found = {e.prompt_id: e for e in journal.search("cat")}
    assert found["kept"].prompt == {} and found["kept"].prompt_kept
    assert found["kept"].seed == 7 and found["kept"].positive == "a cat in a hat"
    assert journal.prompt_of(found["kept"]) == prompt(7)
    assert not found["seen-late"].prompt_kept and journal.prompt_of(found["seen-late"]) == {}
    assert journal.get("s", "kept").prompt_kept and not journal.get("s", "seen-late").prompt_kept
