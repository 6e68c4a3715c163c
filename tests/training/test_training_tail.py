"""Following a log like ``tail -F``: growth, partial lines, truncation, rotation."""

from __future__ import annotations

import asyncio

from pistachio_tui.training.tail import LogFollower, follow


def append(path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def test_growing_file_and_partial_last_line(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("one\ntwo\nthr")
    with LogFollower(log) as f:
        chunk = f.read()
        assert chunk.lines == ["one", "two"] and chunk.first_line_no == 1 and not chunk.reset
        assert f.read().lines == []
        append(log, "ee\nfour")
        chunk = f.read()
        assert chunk.lines == ["three"] and chunk.first_line_no == 3
        append(log, "\n")
        assert f.read().lines == ["four"]


def test_missing_file_appears_later(tmp_path):
    log = tmp_path / "later.log"
    with LogFollower(log) as f:
        assert f.read().lines == []
        log.write_text("hello\n")
        assert f.read().lines == ["hello"]


def test_truncation_restarts_numbering(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("a\nb\nc\n")
    with LogFollower(log) as f:
        f.read()
        log.write_text("x\n")
        chunk = f.read()
        assert chunk.lines == ["x"] and chunk.first_line_no == 1 and chunk.reset


def test_rotation_drains_old_file_then_reads_new(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("old1\n")
    with LogFollower(log) as f:
        assert f.read().lines == ["old1"]
        append(log, "old2\n")
        log.rename(tmp_path / "train.log.1")
        log.write_text("new1\nnew2\n")
        assert f.read().lines == ["old2"]
        chunk = f.read()
        assert chunk.lines == ["new1", "new2"] and chunk.reset and chunk.first_line_no == 1


def test_large_backlog_comes_in_bounded_chunks(tmp_path):
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)))
    with LogFollower(log, max_bytes=500) as f:
        seen = []
        while chunk := f.read().lines:
            assert len(chunk) < 100
            seen.extend(chunk)
    assert seen == [f"line {i}" for i in range(1000)]


def test_from_end_skips_existing_content(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("old\n")
    with LogFollower(log, from_end=True) as f:
        assert f.read().lines == []
        append(log, "new\n")
        assert f.read().lines == ["new"]


async def test_async_follow_yields_new_lines(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("first\n")
    stream = follow(log, interval=0.01)
    assert (await anext(stream)).lines == ["first"]
    append(log, "second\n")
    chunk = await asyncio.wait_for(anext(stream), 5)
    assert chunk.lines == ["second"] and chunk.first_line_no == 2
    await stream.aclose()


def test_runaway_line_is_handed_out_in_pieces(tmp_path, monkeypatch):
    import pistachio_tui.training.tail as tail

    monkeypatch.setattr(tail, "MAX_LINE_BYTES", 100)
    log = tmp_path / "bars.log"
    log.write_text("x" * 250)
    with LogFollower(log, max_bytes=64) as f:
        assert f.read().lines == ["x" * 250]
        assert f.read().lines == []
