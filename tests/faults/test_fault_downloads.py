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
from pistachio_tui.fix.downloads import DiskFull, DownloadError, download, part_path
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
