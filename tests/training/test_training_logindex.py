"""The big-log index: lines by number, search, growth, truncation, replacement."""

from __future__ import annotations

import pytest

from pistachio_tui.training.logindex import LogIndex
from pistachio_tui.training.synth import log_lines

WAIT = 20  # seconds; generous for a loaded CI machine, normally milliseconds


@pytest.fixture
def big_log(tmp_path):
    path = tmp_path / "train.log"
    lines = list(log_lines(epochs=40, steps_per_epoch=60))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, lines


@pytest.mark.parametrize("block", [1, 7, 64, 4096])
def test_lines_by_number(big_log, block):
    path, lines = big_log
    with LogIndex(path, block=block) as index:
        assert index.wait(WAIT)
        assert index.line_count == len(lines)
        for start in (0, 1, 6, 7, 8, 63, 64, 65, 1234, len(lines) - 2, len(lines) - 1):
            assert index.lines(start, 5) == lines[start:start + 5]
        assert index.lines(len(lines), 3) == [] and index.lines(-1, 3) == []
        progress = index.progress
        assert progress.caught_up and progress.fraction == 1.0 and progress.lines == len(lines)


def test_search_next_and_previous(big_log):
    path, lines = big_log
    with LogIndex(path) as index:
        assert index.wait(WAIT)
        epochs = [i for i, line in enumerate(lines) if line.startswith("Started new epoch")]
        assert index.find("started NEW epoch", -1) == epochs[0]
        assert index.find("Started new epoch", epochs[0]) == epochs[1]
        assert index.find("Started new epoch", epochs[5], backwards=True) == epochs[4]
        assert index.find("Started new epoch", epochs[0], backwards=True) is None
        assert index.find(r"steps: 1\d{3} loss", 0, regex=True) == next(
            i for i, line in enumerate(lines) if line.startswith("steps: 1000 "))
        assert index.find("TRAINING COMPLETE!", 0) == len(lines) - 1
        assert index.find("no such text", 0) is None
        assert index.find("Global batch size", len(lines) - 1, backwards=True) == 2


@pytest.mark.parametrize("block", [2, 5, 4096])
def test_appended_lines_and_partial_last_line(tmp_path, block):
    """Appends land in a block that was counted while cut by the end of the file."""
    path = tmp_path / "grow.log"
    path.write_text("a\nb\nhalf")
    with LogIndex(path, block=block, poll_interval=60) as index:
        assert index.wait(WAIT)
        assert index.line_count == 3 and index.lines(0, 5) == ["a", "b", "half"]
        with open(path, "a") as fh:
            fh.write(" done\nc\nd\n")
        index.check_now()
        assert index.wait(WAIT)
        assert index.lines(0, 10) == ["a", "b", "half done", "c", "d"]
        assert index.find("c", 0) == 3


def test_truncated_or_replaced_file_starts_over(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("".join(f"old {i}\n" for i in range(100)))
    with LogIndex(path, poll_interval=60) as index:
        assert index.wait(WAIT)
        generation = index.generation
        path.write_text("new 0\nnew 1\n")
        index.check_now()
        assert index.wait(WAIT)
        assert index.lines(0, 5) == ["new 0", "new 1"] and index.generation > generation
        replacement = tmp_path / "other.txt"
        replacement.write_text("replaced\n" * 3)
        replacement.replace(path)
        index.check_now()
        assert index.wait(WAIT)
        assert index.lines(0, 5) == ["replaced"] * 3


def test_missing_file_is_indexed_once_it_appears(tmp_path):
    path = tmp_path / "later.log"
    with LogIndex(path, poll_interval=60) as index:
        assert index.line_count == 0 and index.lines(0, 1) == []
        path.write_text("hello\n")
        index.check_now()
        assert index.wait(WAIT)
        assert index.lines(0, 1) == ["hello"]


def test_memory_is_sparse(big_log):
    path, lines = big_log
    with LogIndex(path, block=1024) as index:
        assert index.wait(WAIT)
        assert index.index_bytes <= 8 * (path.stat().st_size // 1024 + 1)
