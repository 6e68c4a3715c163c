"""What keeps a download near line rate: large reads, few progress reports, more connections for large files."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time

import pytest

from pistachio_tui.fix import downloads, ranges
from pistachio_tui.fix.downloads import PROGRESS_EVERY_S, download, part_path
from tests.fix.file_server import FileServer, fake_model

BIG = fake_model(8_000_000)
BIG_SHA = hashlib.sha256(BIG).hexdigest()


@pytest.fixture
async def files():
    server = FileServer(files={"model.safetensors": BIG, "small.safetensors": fake_model(2_000_000)})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def parallel(monkeypatch):
    """Files of 1 MB and more come over several connections, one per 500 KB."""
    monkeypatch.setattr(ranges, "PARALLEL_MIN", 1_000_000)
    monkeypatch.setattr(ranges, "SPLIT_IF_LONGER_S", 0)


@pytest.fixture(params=["one-connection", "ranges"])
def either_way(request, files, monkeypatch):
    """The big file comes over one connection (the server ignores ``Range``), or over several."""
    if request.param == "ranges":
        monkeypatch.setattr(ranges, "PARALLEL_MIN", 1_000_000)
    else:
        files.ignore_range = True


def spans_asked(files) -> list[str]:
    return sorted(r.get("Range", "") for r in files.requests)


async def test_a_large_file_comes_over_eight_connections(files, tmp_path, parallel):
    target = tmp_path / "model.safetensors"
    seen = []
    await download(f"{files.url}/model.safetensors", target, sha256=BIG_SHA, progress=seen.append)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == BIG_SHA
    assert spans_asked(files) == sorted(["bytes=0-"] + [f"bytes={i * 1_000_000}-{(i + 1) * 1_000_000 - 1}"
                                                        for i in range(1, 8)])
    assert seen[-1].connections == 8 and seen[-1].done == len(BIG)


async def test_spans_are_written_without_joining_chunks_and_survive_short_writes(files, tmp_path, parallel,
                                                                                monkeypatch):
    """Each span's chunks go to the disk as they came (one vectored write, no copy to join them);
    a write that takes fewer bytes than given (a signal, a quota) goes on at the right offset."""
    real = os.pwritev
    buffers_per_write: list[int] = []

    def short_pwritev(fd, buffers, offset):
        buffers_per_write.append(len(buffers))
        return real(fd, [buffers[0][:3000]], offset)

    monkeypatch.setattr(ranges.os, "pwritev", short_pwritev)
    target = tmp_path / "model.safetensors"
    await download(f"{files.url}/model.safetensors", target, sha256=BIG_SHA)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == BIG_SHA
    assert len(buffers_per_write) > len(BIG) // 3000 and max(buffers_per_write) > 1


async def test_a_finished_parallel_download_saves_its_record_only_before_it_starts(files, tmp_path, parallel,
                                                                                   monkeypatch):
    """Each save of ``.part.ranges`` is an fsync; a whole file needs none at the end."""
    saved: list[str] = []
    real = ranges.Plan.save

    def save(plan, path):
        saved.append(json.dumps([span.done for span in plan.spans]))
        real(plan, path)

    monkeypatch.setattr(ranges.Plan, "save", save)
    monkeypatch.setattr(ranges, "PLAN_SAVE_EVERY_S", 60)
    target = tmp_path / "model.safetensors"
    await download(f"{files.url}/model.safetensors", target, sha256=BIG_SHA)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == BIG_SHA
    assert saved == [json.dumps([0] * 8)]


async def test_the_hash_runs_while_the_file_is_written(files, tmp_path, monkeypatch, either_way):
    """Two threads: the sha256 of a batch and its write take the time of the slower, not of both."""
    spans: dict[str, list[tuple[float, float]]] = {"hash": [], "write": []}

    def timed(kind, real):
        def run(*args):
            began = time.monotonic()
            time.sleep(0.02)  # long enough to be seen beside the other
            real(*args)
            spans[kind].append((began, time.monotonic()))
        return run

    monkeypatch.setattr(downloads, "hash_chunks", timed("hash", downloads.hash_chunks))
    monkeypatch.setattr(ranges, "_pwrite_all", timed("write", ranges._pwrite_all))
    monkeypatch.setattr(downloads.PartWriter, "_write", timed("write", downloads.PartWriter._write))
    target = tmp_path / "model.safetensors"
    await download(f"{files.url}/model.safetensors", target, sha256=BIG_SHA)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == BIG_SHA
    assert spans["hash"] and any(h0 < w1 and w0 < h1 for h0, h1 in spans["hash"] for w0, w1 in spans["write"])


async def test_a_smaller_file_uses_fewer_connections(files, tmp_path, parallel):
    await download(f"{files.url}/small.safetensors", tmp_path / "small.safetensors")
    assert len(files.requests) == 4


async def test_progress_is_told_a_few_times_a_second_and_at_the_end(files, tmp_path, either_way):
    seen = []
    began = time.monotonic()
    await download(f"{files.url}/model.safetensors", tmp_path / "model.safetensors", progress=seen.append)
    elapsed = time.monotonic() - began
    # Per chunk this would be well over a hundred reports for 8 MB.
    assert len(seen) <= elapsed / PROGRESS_EVERY_S + 10, (len(seen), elapsed)
    assert seen[-1].done == len(BIG) and seen[-1].fraction == 1.0
    assert [p.done for p in seen] == sorted(p.done for p in seen)


async def test_reads_are_larger_than_httpcores_default(files, tmp_path, monkeypatch):
    files.ignore_range = True
    sizes: list[int] = []
    real_add = downloads.PartWriter.add

    async def add(self, chunk: bytes) -> None:
        sizes.append(len(chunk))
        await real_add(self, chunk)

    monkeypatch.setattr(downloads.PartWriter, "add", add)
    target = tmp_path / "model.safetensors"
    await download(f"{files.url}/model.safetensors", target, sha256=BIG_SHA)
    assert not part_path(target).exists()
    assert sum(sizes) == len(BIG) and max(sizes) > 64 * 1024, max(sizes)


async def test_a_connection_that_would_finish_soon_stays_alone_and_hashes_on_the_way(files, tmp_path, monkeypatch):
    monkeypatch.setattr(ranges, "PARALLEL_MIN", 1_000_000)
    read_back: list[int] = []
    real_rest = ranges._hash_rest

    def hash_rest(part, digest, offset):
        read_back.append(offset)
        return real_rest(part, digest, offset)

    monkeypatch.setattr(ranges, "_hash_rest", hash_rest)
    target = tmp_path / "model.safetensors"
    await download(f"{files.url}/model.safetensors", target, sha256=BIG_SHA)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == BIG_SHA
    assert spans_asked(files) == ["bytes=0-"]
    # Hashed while it arrived: nothing is read back to verify it.
    assert read_back == [len(BIG)]
    assert not part_path(target).exists() and not part_path(target).with_suffix(".part.ranges").exists()


async def test_a_connection_that_stalls_gets_help_for_the_spans_it_has_not_reached(files, tmp_path, monkeypatch):
    monkeypatch.setattr(ranges, "PARALLEL_MIN", 1_000_000)
    monkeypatch.setattr(ranges, "SPLIT_PROBE_S", 0.05)
    files.gate = asyncio.Event()  # the first answer sends half the file, then waits
    target = tmp_path / "model.safetensors"
    task = asyncio.create_task(download(f"{files.url}/model.safetensors", target, sha256=BIG_SHA))
    try:
        await asyncio.wait_for(_until(lambda: len(files.requests) > 1), 10)
    finally:
        files.gate.set()
    await asyncio.wait_for(task, 10)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == BIG_SHA
    asked = [r.get("Range", "") for r in files.requests]
    assert asked[0] == "bytes=0-"
    starts = [int(r.removeprefix("bytes=").split("-")[0]) for r in asked[1:]]
    # Only the spans the first connection had not reached get a connection of their own.
    assert starts and all(s >= len(BIG) // 2 and s % 1_000_000 == 0 for s in starts), asked


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.01)
