"""Downloads under failure: cut connections, a full disk, Ctrl-C. The final name only ever
holds a complete, verified file; what is kept matches the documented behaviour."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import threading
from pathlib import Path

import pytest

from pistachio_tui.fix import downloads
from pistachio_tui.fix.downloads import ChecksumMismatch, DiskFull, DownloadError, download, part_path
from tests.faults.helpers import assert_actionable, wait_until
from tests.fix.file_server import FileServer, fake_model

SIZE = 2_000_000
HALF = SIZE // 2
DATA = fake_model(SIZE)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
async def files():
    server = FileServer(files={"model.safetensors": DATA})
    await server.start()
    yield server
    if server.gate is not None:
        server.gate.set()
    await server.stop()


class DirWatcher:
    """Polls a folder from another thread, as a ComfyUI model listing would, and records
    every size it ever saw under ``name``."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder, name
        self.sizes: set[int] = set()
        self.saw_part = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DirWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir(self.folder):
                try:
                    if entry.name == self.name:
                        self.sizes.add(entry.stat().st_size)
                    elif entry.name == self.name + ".part":
                        self.saw_part = True
                except FileNotFoundError:
                    continue
            self._stop.wait(0.0005)


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_cut_halfway_then_resumed_by_the_next_call(files, tmp_path):
    files.drop_after = {1: HALF}
    target = tmp_path / "model.safetensors"
    url = f"{files.url}/model.safetensors"
    with pytest.raises(DownloadError) as caught:
        await download(url, target, sha256=SHA, retries=0)
    assert_actionable(str(caught.value), "run the download again to resume")
    assert not target.exists()
    assert part_path(target).stat().st_size == HALF

    with DirWatcher(tmp_path, target.name) as watcher:
        await download(url, target, sha256=SHA)
    assert files.requests[-1]["Range"] == f"bytes={HALF}-"
    assert sha_of(target) == SHA and not part_path(target).exists()
    assert watcher.sizes <= {SIZE}


async def test_final_name_never_holds_a_partial_file(files, tmp_path):
    files.gate = asyncio.Event()
    files.drop_after = {1: HALF // 2}
    target = tmp_path / "model.safetensors"
    with DirWatcher(tmp_path, target.name) as watcher:
        task = asyncio.create_task(download(f"{files.url}/model.safetensors", target, sha256=SHA))
        # The resumed request stops halfway through its body until the gate opens.
        await wait_until(lambda: len(files.requests) >= 2 and part_path(target).exists()
                         and part_path(target).stat().st_size > HALF // 2, "the resumed request to write")
        assert not target.exists()
        files.gate.set()
        await task
        await wait_until(lambda: SIZE in watcher.sizes, "the watcher to see the finished file")
    assert watcher.saw_part
    assert watcher.sizes == {SIZE}, "the final name was visible with a partial size"
    assert sha_of(target) == SHA


class FillsUp:
    """A file whose disk fills up after ``room`` bytes."""

    def __init__(self, fh, room: int) -> None:
        self._fh, self._room = fh, room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            self._fh.write(data[: self._room])
            self._room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._fh.write(data)

    def __enter__(self) -> FillsUp:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


@pytest.fixture
def disk_fills_after(monkeypatch):
    from pistachio_tui.fix import ranges

    def install(room: int) -> None:
        real_open = ranges.open_part
        monkeypatch.setattr(ranges, "open_part", lambda part, *, resume: FillsUp(real_open(part, resume=resume), room))
    return install


async def test_disk_full_mid_download_is_clear_and_removes_the_partial(files, tmp_path, disk_fills_after):
    disk_fills_after(HALF)
    target = tmp_path / "model.safetensors"
    with pytest.raises(DiskFull) as caught:
        await download(f"{files.url}/model.safetensors", target, sha256=SHA)
    assert_actionable(str(caught.value), "filled up", "Free some space and retry")
    # downloads.py documents that a full disk removes the partial file (it is useless to resume).
    assert sorted(p.name for p in tmp_path.iterdir()) == []


async def test_disk_full_while_resuming_removes_the_earlier_partial_too(files, tmp_path, disk_fills_after):
    target = tmp_path / "model.safetensors"
    part_path(target).write_bytes(DATA[:HALF])
    disk_fills_after(1000)
    with pytest.raises(DiskFull):
        await download(f"{files.url}/model.safetensors", target)
    assert files.requests[-1]["Range"] == f"bytes={HALF}-"
    assert not part_path(target).exists() and not target.exists()


async def test_too_little_free_space_is_refused_before_writing(files, tmp_path, monkeypatch):
    usage = type("usage", (), {"total": 10**12, "used": 10**12, "free": 4096})
    monkeypatch.setattr(downloads.shutil, "disk_usage", lambda _path: usage)
    target = tmp_path / "model.safetensors"
    with pytest.raises(DiskFull) as caught:
        await download(f"{files.url}/model.safetensors", target, expected_size=SIZE)
    assert_actionable(str(caught.value), "Not enough disk space", "Free some space and retry")
    assert list(tmp_path.iterdir()) == [] and files.requests == []


async def test_cancelled_download_keeps_the_part_and_resumes(files, tmp_path):
    files.gate = asyncio.Event()
    target = tmp_path / "model.safetensors"
    task = asyncio.create_task(download(f"{files.url}/model.safetensors", target, sha256=SHA))
    await wait_until(lambda: part_path(target).exists() and part_path(target).stat().st_size == HALF,
                     "half the file to be written")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not target.exists() and part_path(target).stat().st_size == HALF
    files.gate.set()
    await download(f"{files.url}/model.safetensors", target, sha256=SHA)
    assert files.requests[-1]["Range"] == f"bytes={HALF}-"
    assert sha_of(target) == SHA and not part_path(target).exists()


# -- parallel ranged downloads: the same guarantees over several connections -----------------------

SPAN = SIZE // 4


@pytest.fixture
def parallel(monkeypatch):
    """Files of 1 MB and more come over four connections (2 MB here, so spans of 500 KB)."""
    from pistachio_tui.fix import ranges

    monkeypatch.setattr(ranges, "PARALLEL_MIN", 1_000_000)
    monkeypatch.setattr(ranges, "SPLIT_IF_LONGER_S", 0)


def plan_file(target: Path) -> Path:
    return part_path(target).with_name(part_path(target).name + ".ranges")


def ranges_asked(files) -> list[str]:
    return [r.get("Range", "") for r in files.requests]


async def test_parallel_download_uses_four_ranges_and_verifies(files, tmp_path, parallel):
    target = tmp_path / "model.safetensors"
    seen = []
    await download(f"{files.url}/model.safetensors", target, sha256=SHA, progress=seen.append)
    assert sha_of(target) == SHA
    assert sorted(ranges_asked(files)) == sorted(
        ["bytes=0-"] + [f"bytes={i * SPAN}-{(i + 1) * SPAN - 1}" for i in (1, 2, 3)])
    assert seen[-1].connections == 4 and seen[-1].done == SIZE
    assert not part_path(target).exists() and not plan_file(target).exists()


async def test_one_range_cut_resumes_only_that_range(files, tmp_path, parallel):
    files.drop_after = {3: 1000}
    target = tmp_path / "model.safetensors"
    await download(f"{files.url}/model.safetensors", target, sha256=SHA)
    assert sha_of(target) == SHA
    resumed = ranges_asked(files)[4:]
    assert len(resumed) == 1, ranges_asked(files)
    start, end = map(int, resumed[0].removeprefix("bytes=").split("-"))
    assert start % SPAN == 1000 and end == start - 1000 + SPAN - 1


async def test_a_range_that_keeps_failing_is_kept_for_the_next_call(files, tmp_path, parallel):
    files.drop_after = {n: 1000 for n in range(2, 40)}
    target = tmp_path / "model.safetensors"
    url = f"{files.url}/model.safetensors"
    with pytest.raises(DownloadError) as caught:
        await download(url, target, sha256=SHA, retries=1)
    assert_actionable(str(caught.value), "run the download again to resume")
    assert part_path(target).stat().st_size == SIZE and plan_file(target).exists()
    assert not target.exists()
    before = len(files.requests)
    files.drop_after = {}
    await download(url, target, sha256=SHA)
    assert sha_of(target) == SHA and not plan_file(target).exists()
    again = ranges_asked(files)[before:]
    # Only what was missing is asked for again: no range starts at a span's beginning.
    assert again and all(int(r.removeprefix("bytes=").split("-")[0]) % SPAN for r in again), again


async def test_server_dropping_range_support_midway_restarts_over_one_connection(files, tmp_path, parallel):
    files.ignore_range_after = 1
    target = tmp_path / "model.safetensors"
    await download(f"{files.url}/model.safetensors", target, sha256=SHA)
    assert sha_of(target) == SHA and not plan_file(target).exists()


async def test_a_wrong_total_size_in_one_range_is_refused(files, tmp_path, parallel):
    files.wrong_total_after = 1
    target = tmp_path / "model.safetensors"
    with pytest.raises(ChecksumMismatch, match="were expected"):
        await download(f"{files.url}/model.safetensors", target)
    assert list(tmp_path.iterdir()) == []


async def test_cancelled_parallel_download_resumes_every_range(files, tmp_path, parallel):
    files.gate = asyncio.Event()
    target = tmp_path / "model.safetensors"
    url = f"{files.url}/model.safetensors"
    task = asyncio.create_task(download(url, target, sha256=SHA))
    await wait_until(lambda: len(files.requests) >= 4, "four connections")
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert plan_file(target).exists() and not target.exists()
    files.gate.set()
    files.gate = None
    await download(url, target, sha256=SHA)
    assert sha_of(target) == SHA and not plan_file(target).exists()


async def test_a_parallel_part_without_its_record_is_never_taken_for_whole(files, tmp_path, parallel):
    target = tmp_path / "model.safetensors"
    part_path(target).write_bytes(b"\0" * SIZE)
    plan_file(target).write_text("{not json")
    await download(f"{files.url}/model.safetensors", target, expected_size=SIZE)
    assert sha_of(target) == SHA
