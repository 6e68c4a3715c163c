"""Resumable, verified downloads against a local file server."""

from __future__ import annotations

import asyncio
import errno
import hashlib
from collections import namedtuple

import httpx
import pytest

from pistachio_tui.fix import downloads
from pistachio_tui.fix.downloads import (
    ChecksumMismatch,
    DiskFull,
    DownloadError,
    GatedModel,
    UnsafePath,
    download,
    part_path,
    safe_target,
)
from tests.fix.file_server import FileServer, fake_model

DATA = fake_model(3 * 1024 * 1024 + 123)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
async def server():
    srv = FileServer(files={"model.safetensors": DATA})
    await srv.start()
    try:
        yield srv
    finally:
        if srv.gate is not None:
            srv.gate.set()
        await srv.stop()


async def test_full_download_reports_progress_and_verifies(server, tmp_path):
    target = tmp_path / "loras" / "model.safetensors"
    seen = []
    result = await download(f"{server.url}/model.safetensors", target, sha256=SHA, progress=seen.append)
    assert result == target and target.read_bytes() == DATA
    assert not part_path(target).exists()
    assert seen[-1].done == len(DATA) and seen[-1].total == len(DATA) and seen[-1].fraction == 1.0


async def test_dropped_connection_is_resumed_with_range(server, tmp_path):
    server.drop_after = {1: 1_000_000}
    target = tmp_path / "model.safetensors"
    await download(f"{server.url}/model.safetensors", target, sha256=SHA)
    assert target.read_bytes() == DATA
    assert server.requests[1]["Range"] == "bytes=1000000-"


async def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.ignore_range = True
    target = tmp_path / "model.safetensors"
    part_path(target).write_bytes(DATA[:5000])
    await download(f"{server.url}/model.safetensors", target, sha256=SHA)
    assert target.read_bytes() == DATA
    assert server.requests[0]["Range"] == "bytes=5000-"


async def test_complete_part_file_gets_416_and_is_finished(server, tmp_path):
    target = tmp_path / "model.safetensors"
    part_path(target).write_bytes(DATA)
    await download(f"{server.url}/model.safetensors", target)
    assert target.read_bytes() == DATA and not part_path(target).exists()


class _ToLocal(httpx.AsyncHTTPTransport):
    """Sends every request to the local server, whatever host the URL names."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self._base = httpx.URL(base)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host=self._base.host, port=self._base.port)
        return await super().handle_async_request(request)


async def test_hf_token_sent_only_to_hf_and_gated_message(server, tmp_path):
    server.token = "hf_secret_value"
    server.files["acme/gated-model/resolve/main/model.safetensors"] = DATA
    target = tmp_path / "model.safetensors"
    async with httpx.AsyncClient(transport=_ToLocal(server.url), follow_redirects=True) as client:
        hf_url = "https://huggingface.co/acme/gated-model/resolve/main/model.safetensors"
        with pytest.raises(GatedModel) as info:
            await download(hf_url, target, client=client)
        assert "https://huggingface.co/acme/gated-model" in str(info.value)
        assert "HF_TOKEN" in str(info.value)
        with pytest.raises(DownloadError) as other:
            await download("https://example.org/acme/gated-model/resolve/main/model.safetensors", target, client=client, token="hf_secret_value")
        assert "Authorization" not in server.requests[-1]
        assert "hf_secret_value" not in str(other.value)
        await download(hf_url, target, client=client, token="hf_secret_value")
    assert target.read_bytes() == DATA


async def test_checksum_mismatch_removes_partial(server, tmp_path):
    target = tmp_path / "model.safetensors"
    with pytest.raises(ChecksumMismatch):
        await download(f"{server.url}/model.safetensors", target, sha256="0" * 64)
    assert not target.exists() and not part_path(target).exists()


async def test_not_enough_free_space_refused_before_start(server, tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(downloads.shutil, "disk_usage", lambda _p: usage(10**9, 10**9, 1000))
    target = tmp_path / "model.safetensors"
    with pytest.raises(DiskFull) as info:
        await download(f"{server.url}/model.safetensors", target)
    assert "Not enough disk space" in str(info.value)
    assert not part_path(target).exists()


async def test_enospc_during_write_removes_partial(server, tmp_path, monkeypatch):
    from pistachio_tui.fix import ranges

    class _Full:
        def __init__(self, fh):
            self._fh = fh

        def write(self, _data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()

    real_open = ranges.open_part
    monkeypatch.setattr(ranges, "open_part", lambda part, *, resume: _Full(real_open(part, resume=resume)))
    target = tmp_path / "model.safetensors"
    with pytest.raises(DiskFull) as info:
        await download(f"{server.url}/model.safetensors", target)
    assert "filled up" in str(info.value)
    assert not part_path(target).exists() and not target.exists()


async def test_cancel_keeps_part_then_resume(server, tmp_path):
    server.gate = asyncio.Event()
    target = tmp_path / "model.safetensors"
    got_bytes = asyncio.Event()

    def on_progress(p):
        if p.done > 0:
            got_bytes.set()

    task = asyncio.create_task(download(f"{server.url}/model.safetensors", target, progress=on_progress))
    await asyncio.wait_for(got_bytes.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not target.exists()
    kept = part_path(target).stat().st_size
    assert 0 < kept < len(DATA)
    server.gate.set()
    server.gate = None
    seen = []
    await download(f"{server.url}/model.safetensors", target, sha256=SHA, progress=seen.append)
    assert target.read_bytes() == DATA
    assert server.requests[-1]["Range"] == f"bytes={kept}-"
    assert seen[0].resumed_from == kept


async def test_missing_file_is_a_clear_error(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        await download(f"{server.url}/nope.safetensors", tmp_path / "nope.safetensors")


def test_safe_target_refuses_escapes(tmp_path):
    root = tmp_path / "models"
    (root / "loras").mkdir(parents=True)
    assert safe_target(root, "loras/x.safetensors") == root / "loras" / "x.safetensors"
    for bad in ("../x.safetensors", "loras/../../x", "/etc/passwd", ""):
        with pytest.raises(UnsafePath):
            safe_target(root, bad)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(UnsafePath, match="outside"):
        safe_target(root, "link/x.safetensors")


async def test_remote_size_differing_from_expected_is_refused_early(server, tmp_path):
    target = tmp_path / "model.safetensors"
    with pytest.raises(ChecksumMismatch, match="were expected"):
        await download(f"{server.url}/model.safetensors", target, expected_size=len(DATA) + 1)
    assert not part_path(target).exists() and not target.exists()
