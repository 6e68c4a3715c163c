"""Resumable, verified downloads against a local file server."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import struct
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
    WrongContent,
    download,
    part_path,
    safe_target,
)
from tests.fix.file_server import LOGIN_PAGE, FileServer, fake_model

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


# -- what arrived must be what was asked for --------------------------------------------------------


async def test_an_html_login_page_is_not_saved_as_a_model(server, tmp_path):
    server.login_page = 200
    target = tmp_path / "model.safetensors"
    with pytest.raises(WrongContent, match="web page"):
        await download(f"{server.url}/model.safetensors", target)
    assert not target.exists() and not part_path(target).exists()


async def test_html_bytes_under_a_binary_type_are_refused_too(server, tmp_path):
    server.files["model.ckpt"] = LOGIN_PAGE
    target = tmp_path / "model.ckpt"
    with pytest.raises(WrongContent, match="web page"):
        await download(f"{server.url}/model.ckpt", target)
    assert not target.exists() and not part_path(target).exists()


@pytest.mark.parametrize("blob", [
    os.urandom(5000),  # not a safetensors header at all
    fake_model(5000)[:4000],  # a whole header, but tensors that run past the end
    struct.pack("<Q", 60) + json.dumps({"w": {"data_offsets": ["0", "9"]}}).encode().ljust(60) + b"x" * 9,
], ids=["random-bytes", "cut-short", "string-offsets"])
async def test_a_safetensors_file_must_have_a_header_that_fits(server, tmp_path, blob):
    server.files["bad.safetensors"] = blob
    target = tmp_path / "bad.safetensors"
    with pytest.raises(WrongContent, match="not a whole safetensors file"):
        await download(f"{server.url}/bad.safetensors", target)
    assert not target.exists() and not part_path(target).exists()


async def test_a_file_already_present_is_verified_before_it_counts(server, tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(LOGIN_PAGE)
    with pytest.raises(WrongContent, match="already there"):
        await download(f"{server.url}/model.safetensors", target)
    target.write_bytes(DATA)
    with pytest.raises(ChecksumMismatch, match="already there"):
        await download(f"{server.url}/model.safetensors", target, sha256="0" * 64)
    assert await download(f"{server.url}/model.safetensors", target, sha256=SHA) == target
    assert server.requests == []


async def test_a_body_shorter_than_announced_is_resumed_not_kept(server, tmp_path):
    server.drop_after = {1: 1000, 2: 1000, 3: 1000, 4: 1000}
    target = tmp_path / "model.safetensors"
    with pytest.raises(DownloadError, match="kept dropping"):
        await download(f"{server.url}/model.safetensors", target)
    assert not target.exists() and part_path(target).stat().st_size == 4000


@pytest.mark.parametrize("header", ["bytes 0-x/9", "bytes ²-5/9", "bytes 0-5/²³", "items 0-5/9", "bytes"])
def test_malformed_content_range_is_read_as_absent(header):
    from pistachio_tui.fix.downloads import Answer

    raw = [(b"content-range", header.encode()), (b"content-length", "٣".encode())]
    answer = Answer(httpx.Response(206, headers=raw), [])
    start, end, total = answer.content_range()
    assert None in (start, end, total) and answer.length() is None


async def test_unicode_digit_sizes_and_bad_content_range_are_no_traceback(tmp_path):
    def handler(request):
        raw = [(b"content-range", "bytes ٠-5/²³".encode()), (b"content-length", "٣".encode())]
        return httpx.Response(206, headers=raw, content=b"abc")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(DownloadError):
            await download("http://files.test/m.safetensors", tmp_path / "m.safetensors", client=client, retries=0)


# -- no write lands outside its folder ----------------------------------------------------------------


async def test_a_symlink_planted_at_the_part_name_is_refused(server, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"precious")
    models = tmp_path / "models"
    models.mkdir()
    target = models / "model.safetensors"
    part_path(target).symlink_to(outside)
    with pytest.raises(UnsafePath, match="regular file"):
        await download(f"{server.url}/model.safetensors", target)
    assert outside.read_bytes() == b"precious" and not target.exists()


async def test_a_dangling_symlink_at_the_part_name_is_not_followed(server, tmp_path):
    outside = tmp_path / "created-outside.bin"
    target = tmp_path / "models" / "model.safetensors"
    target.parent.mkdir()
    part_path(target).symlink_to(outside)
    with pytest.raises(UnsafePath):
        await download(f"{server.url}/model.safetensors", target)
    assert not outside.exists() and not target.exists()


async def test_a_symlink_at_the_final_name_is_refused(server, tmp_path):
    elsewhere = tmp_path / "elsewhere.safetensors"
    elsewhere.write_bytes(DATA)
    target = tmp_path / "models" / "model.safetensors"
    target.parent.mkdir()
    target.symlink_to(elsewhere)
    with pytest.raises(UnsafePath, match="symlink"):
        await download(f"{server.url}/model.safetensors", target)


# -- credentials go to their own host only, on every redirect hop ----------------------------------


async def test_hf_token_is_not_sent_to_a_host_a_redirect_names(server, tmp_path):
    server.files["cdn/model.safetensors"] = DATA
    server.redirects["acme/m/resolve/main/model.safetensors"] = "https://cdn.example.org/cdn/model.safetensors"
    server.redirects["acme/m/resolve/main/other.safetensors"] = "https://cdn-lfs.huggingface.co/cdn/model.safetensors"
    async with httpx.AsyncClient(transport=_ToLocal(server.url), follow_redirects=True) as client:
        await download("https://huggingface.co/acme/m/resolve/main/model.safetensors", tmp_path / "a.safetensors",
                       client=client, token="hf_secret_value")
        hf_hop, foreign_hop = server.requests
        assert hf_hop["Host"] == "huggingface.co" and hf_hop["Authorization"] == "Bearer hf_secret_value"
        assert foreign_hop["Host"] == "cdn.example.org" and "Authorization" not in foreign_hop
        await download("https://huggingface.co/acme/m/resolve/main/other.safetensors", tmp_path / "b.safetensors",
                       client=client, token="hf_secret_value")
        assert server.requests[-1]["Host"] == "cdn-lfs.huggingface.co"
        assert server.requests[-1]["Authorization"] == "Bearer hf_secret_value"


async def test_hf_token_never_goes_over_plain_http(server, tmp_path):
    server.files["acme/m/resolve/main/model.safetensors"] = DATA
    async with httpx.AsyncClient(transport=_ToLocal(server.url)) as client:
        await download("http://huggingface.co/acme/m/resolve/main/model.safetensors", tmp_path / "m.safetensors",
                       client=client, token="hf_secret_value")
    assert "Authorization" not in server.requests[-1]


async def test_a_comfy_servers_headers_stay_with_that_server(tmp_path):
    """ComfyClient sends its ``headers`` (proxy credentials) only to its own server: it follows no
    redirect, so a redirect to another host is never sent them."""
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.errors import ComfyError

    seen = []

    def handler(request):
        seen.append((request.url.host, dict(request.headers)))
        if request.url.host == "comfy.test":
            return httpx.Response(302, headers={"Location": "http://evil.test/queue"})
        return httpx.Response(200, json={"queue_running": [], "queue_pending": []})

    client = ComfyClient("http://comfy.test", headers={"X-Proxy-Key": "sekret-value"},
                         transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(ComfyError):
            await client.queue()
    finally:
        await client.aclose()
    assert [host for host, _ in seen] == ["comfy.test"]


def test_the_workflows_own_hash_reaches_the_download():
    """``models`` metadata with a sha256 ``hash``: the candidate taken from the workflow carries it,
    so the fix flow's download checks it (before, it was parsed and never used)."""
    from pistachio_tui.fix.models_search import from_workflow
    from pistachio_tui.workflow.deps import analyse
    from pistachio_tui.workflow.load import load_workflow
    from tests.fix.workflows import CHECKPOINT_ONLY_NODES, MODELS, fix_workflow

    ui = fix_workflow("http://files.test", CHECKPOINT_ONLY_NODES, [MODELS[0]])
    for entry in ui["models"]:
        entry["hash"], entry["hash_type"] = SHA.upper(), "SHA256"
    needs = analyse(load_workflow(json.dumps(ui).encode()), {})
    (need,) = [n for n in needs.models if n.name == MODELS[0][0]]
    (candidate,) = from_workflow(need)
    assert candidate.sha256 == SHA
