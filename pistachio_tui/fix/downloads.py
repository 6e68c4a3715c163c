"""Resumable, verified downloads of model files (Hugging Face and plain URLs).

A download is written to ``<target>.part`` in the target's own folder and only
renamed to its final name once its size (and sha256, when known) check out.
ComfyUI lists model files by extension (``folder_paths.filter_files_extensions``),
so ``model.safetensors.part`` never shows up in a loader's list half-written
(only folders registered with no extension filter list every file), and the
rename is atomic because it stays on one file system. An interrupted or
cancelled download leaves the ``.part`` behind; the next call resumes it with an
HTTP ``Range`` request.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx

#: Room left free on the disk beyond the file itself, so a download never fills it to the last byte.
FREE_SPACE_MARGIN = 256 * 1024 * 1024
CHUNK_SIZE = 1024 * 1024
#: How many times a dropped connection is resumed within one call before giving up.
RETRIES = 3
#: Received bytes allowed to wait for the disk before the download waits for it.
WRITE_BATCH = 4 * 1024 * 1024
_HF_HOSTS = ("huggingface.co", "hf.co")
_SPEED_WINDOW_S = 5.0


class DownloadError(Exception):
    """A download failed; the message says what to do next."""


class GatedModel(DownloadError):
    """Hugging Face refused the file: a gated or private repository."""


class ChecksumMismatch(DownloadError):
    """The bytes received do not match the expected size or sha256."""


class DiskFull(DownloadError):
    """Not enough free space for the file."""


class UnsafePath(DownloadError):
    """A target path that would land outside the models folder."""


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report: bytes received so far, total if known, speed and ETA."""

    url: str
    target: Path
    done: int
    total: int | None
    #: Bytes per second over the last few seconds.
    speed: float
    eta: float | None
    #: Bytes that were already on disk from an earlier attempt.
    resumed_from: int = 0

    @property
    def fraction(self) -> float | None:
        """0..1 when the total size is known."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressCallback = Callable[[DownloadProgress], None]


def part_path(target: Path) -> Path:
    """Where the unfinished bytes of ``target`` are kept."""
    return target.with_name(target.name + ".part")


def safe_target(root: Path, relative: str | os.PathLike[str]) -> Path:
    """``root / relative``, refused if it is absolute, climbs out with ``..`` or
    resolves (through symlinks) to somewhere outside ``root``."""
    text = os.fspath(relative)
    pure = PurePosixPath(text.replace("\\", "/"))
    if not text or pure.is_absolute() or Path(text).is_absolute() or ".." in pure.parts:
        raise UnsafePath(f"Refusing to write {text!r}: model paths must stay inside {root}.")
    root_real = root.resolve()
    candidate = (root / Path(*pure.parts)).resolve()
    if candidate != root_real and root_real not in candidate.parents:
        raise UnsafePath(
            f"Refusing to write {text!r}: it resolves to {candidate}, outside {root_real} "
            "(a symlink pointing elsewhere?)."
        )
    return root / Path(*pure.parts)


def is_hf_url(url: str) -> bool:
    """True for Hugging Face hosts, the only ones that get the HF token."""
    host = (urlsplit(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in _HF_HOSTS)


def hf_repo_of(url: str) -> str | None:
    """``owner/name`` of a Hugging Face file URL, for messages about gated repos."""
    if not is_hf_url(url):
        return None
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if parts and parts[0] in ("datasets", "spaces"):
        parts = parts[1:]
    return "/".join(parts[:2]) if len(parts) >= 2 else None


class _SpeedMeter:
    """Bytes per second over a sliding window, so a stall shows quickly."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque(maxlen=256)

    def add(self, done: int) -> float:
        now = time.monotonic()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > _SPEED_WINDOW_S:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        return (done - d0) / (now - t0) if now > t0 else 0.0


@dataclass
class _Verifier:
    expected_size: int | None
    sha256: str | None

    def check(self, part: Path, digest: str | None) -> None:
        size = part.stat().st_size
        if self.expected_size is not None and size != self.expected_size:
            part.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"Downloaded {size} bytes but expected {self.expected_size}; the partial file "
                "was removed, run the download again."
            )
        if self.sha256 and digest and digest.lower() != self.sha256.lower():
            part.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"sha256 mismatch (got {digest[:12]}…, expected {self.sha256[:12]}…): the file is "
                "corrupt or not the one expected; the partial file was removed."
            )


def _hash_file(path: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK_SIZE), b""):
            digest.update(block)
    return digest


class _PartWriter:
    """Appends received bytes to the open ``.part`` file and hashes them, in a worker thread.

    A write can stall for long on a network volume or under writeback pressure,
    and sha256 costs CPU for every byte: neither may run on the event loop the
    UI shares. One write runs at a time and takes everything received so far,
    so the file keeps up with the network and a slow disk gets bigger batches;
    past ``WRITE_BATCH`` bytes waiting, the download waits for the disk.
    """

    def __init__(self, fh: BinaryIO, digest: hashlib._Hash) -> None:
        self._fh = fh
        self._digest = digest
        self._pending = bytearray()
        self._drainer: asyncio.Task[None] | None = None

    async def add(self, chunk: bytes) -> None:
        self._pending += chunk
        if self._drainer is None or self._drainer.done():
            if self._drainer is not None:
                self._drainer.result()  # a failed write (disk full) surfaces here
            self._drainer = asyncio.create_task(self._drain())
        elif len(self._pending) >= WRITE_BATCH:
            await asyncio.shield(self._drainer)

    async def flush(self) -> None:
        """Wait until every byte received is written (also after a cancel or a drop)."""
        if self._drainer is not None:
            # Shielded: a thread cannot be stopped, and the file must not close under it.
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        while self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            await asyncio.to_thread(self._write, data)

    def _write(self, data: bytes) -> None:
        self._fh.write(data)
        self._digest.update(data)


def _check_free_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + FREE_SPACE_MARGIN:
        raise DiskFull(
            f"Not enough disk space in {folder}: need {_human(needed)} plus "
            f"{_human(FREE_SPACE_MARGIN)} headroom, {_human(free)} free. Free some space and retry."
        )


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _hf_metadata(response: httpx.Response) -> tuple[int | None, str | None]:
    """Size and sha256 that Hugging Face announces on the redirect of an LFS file."""
    for hop in (*response.history, response):
        etag = hop.headers.get("x-linked-etag", "").strip('"')
        size = hop.headers.get("x-linked-size")
        if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag.lower()):
            return (int(size) if size and size.isdigit() else None), etag
    return None, None


def _content_range_total(value: str | None) -> tuple[int | None, int | None]:
    """(start, total) of ``bytes start-end/total`` or ``bytes */total``."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start = int(span.split("-")[0]) if span[:1].isdigit() else None
    return start, (int(total) if total.isdigit() else None)


def _status_error(url: str, status: int) -> DownloadError:
    repo = hf_repo_of(url)
    if status in (401, 403) and repo:
        return GatedModel(
            f"This model is gated: accept the licence at https://huggingface.co/{repo} "
            "and set HF_TOKEN (env var or secrets.toml)."
        )
    if status in (401, 403):
        return DownloadError(f"{_host(url)} refused the download (HTTP {status}): it needs credentials.")
    if status == 404:
        return DownloadError(f"Not found (HTTP 404): {_safe_url(url)} — check the URL or file name.")
    return DownloadError(f"{_host(url)} answered HTTP {status} for {_safe_url(url)}; try again later.")


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def _safe_url(url: str) -> str:
    """The URL without its query string, which may carry signed tokens, nor a ``user:password@``."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}{parts.path}"


async def download(
    url: str,
    target: Path,
    *,
    expected_size: int | None = None,
    sha256: str | None = None,
    token: str | None = None,
    progress: ProgressCallback | None = None,
    client: httpx.AsyncClient | None = None,
    timeout: float = 30.0,
    retries: int = RETRIES,
) -> Path:
    """Download ``url`` to ``target`` (resuming ``target.part`` if present) and return ``target``.

    An existing ``target`` of the expected size (or of any size when none is
    expected) counts as done. ``token`` is sent as a Bearer token to Hugging
    Face hosts only. When the server announces a sha256 (Hugging Face LFS
    files do) it is checked even if ``sha256`` is not given. Raises :class:`DownloadError` subclasses; on
    cancellation or a dropped connection the ``.part`` file is kept for resume.
    """
    if target.is_file() and expected_size in (None, target.stat().st_size):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    headers = {"Authorization": f"Bearer {token}"} if token and is_hf_url(url) else {}
    owns_client = client is None
    http = client or httpx.AsyncClient(
        follow_redirects=True, timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0))
    )
    verifier = _Verifier(expected_size, sha256)
    try:
        attempt = 0
        while True:
            try:
                await _attempt(http, url, target, headers, verifier, progress)
                return target
            except _Dropped as exc:
                attempt += 1
                if attempt > retries:
                    raise DownloadError(
                        f"The connection to {_host(url)} kept dropping ({exc}); run the download "
                        "again to resume from where it stopped."
                    ) from None
    finally:
        if owns_client:
            await http.aclose()


class _Dropped(Exception):
    """The connection broke mid-file; the caller may resume."""


async def _attempt(
    http: httpx.AsyncClient,
    url: str,
    target: Path,
    headers: dict[str, str],
    verifier: _Verifier,
    progress: ProgressCallback | None,
) -> None:
    part = part_path(target)
    have = part.stat().st_size if part.exists() else 0
    if verifier.expected_size is not None:
        if have > verifier.expected_size:
            part.unlink()
            have = 0
        elif have == verifier.expected_size:
            digest = (await asyncio.to_thread(_hash_file, part)).hexdigest() if verifier.sha256 else None
            verifier.check(part, digest)
            part.replace(target)
            return
        _check_free_space(target.parent, verifier.expected_size - have)
    # Byte offsets of a resume must refer to the file itself, not a compressed stream.
    request_headers = {**headers, "Accept-Encoding": "identity"}
    if have:
        request_headers["Range"] = f"bytes={have}-"
    try:
        async with http.stream("GET", url, headers=request_headers) as response:
            await _receive(response, url, target, part, have, verifier, progress)
    except httpx.ConnectError as exc:
        raise DownloadError(f"Cannot reach {_host(url)} ({exc}); check the network and the URL.") from None
    except httpx.TimeoutException:
        raise _Dropped("timed out") from None
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise _Dropped(str(exc) or type(exc).__name__) from None


async def _receive(
    response: httpx.Response,
    url: str,
    target: Path,
    part: Path,
    have: int,
    verifier: _Verifier,
    progress: ProgressCallback | None,
) -> None:
    status = response.status_code
    if status == 416 and have:
        _, total = _content_range_total(response.headers.get("content-range"))
        if total == have:
            digest = (await asyncio.to_thread(_hash_file, part)).hexdigest() if verifier.sha256 else None
            verifier.check(part, digest)
            part.replace(target)
            return
        # The partial file is longer than the remote one: it is not a prefix of it.
        part.unlink()
        raise _Dropped("partial file does not match the remote file; restarting")
    if status not in (200, 206):
        raise _status_error(url, status)
    hf_size, hf_sha = _hf_metadata(response)
    verifier.sha256 = verifier.sha256 or hf_sha
    if verifier.expected_size is None:
        verifier.expected_size = hf_size
    if status == 206:
        start, total = _content_range_total(response.headers.get("content-range"))
        if start != have:
            part.unlink()
            raise _Dropped(f"server resumed at byte {start}, not {have}; restarting")
    else:
        # A 200 to a Range request: the server ignores ranges, so start over.
        have = 0
        length = response.headers.get("content-length")
        total = int(length) if length and length.isdigit() else None
    if total is not None and verifier.expected_size is not None and total != verifier.expected_size:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"{_safe_url(url)} is {total} bytes but {verifier.expected_size} were expected: "
            "not the file the workflow names, or it changed upstream."
        )
    total = total or verifier.expected_size
    if verifier.expected_size is None:
        verifier.expected_size = total
    if total is not None:
        _check_free_space(target.parent, total - have)

    digest = await asyncio.to_thread(_hash_file, part) if have else hashlib.sha256()
    meter = _SpeedMeter()
    resumed_from = have
    done = have
    try:
        with part.open("ab" if have else "wb") as fh:
            writer = _PartWriter(fh, digest)
            try:
                # No chunk size: httpx would hold bytes back to fill a chunk and lose them on a drop.
                async for chunk in response.aiter_bytes():
                    await writer.add(chunk)
                    done += len(chunk)
                    if progress is not None:
                        speed = meter.add(done)
                        eta = (total - done) / speed if total and speed > 0 else None
                        progress(DownloadProgress(url, target, done, total, speed, eta, resumed_from))
            finally:
                # What arrived is kept even on a drop or a cancel, so a resume starts after it.
                await writer.flush()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            part.unlink(missing_ok=True)
            raise DiskFull(
                f"The disk holding {target.parent} filled up during the download; the partial "
                "file was removed. Free some space and retry."
            ) from None
        raise DownloadError(f"Cannot write {part}: {exc.strerror}.") from None
    if total is not None and done < total:
        raise _Dropped(f"connection closed at {done} of {total} bytes")
    verifier.check(part, digest.hexdigest())
    part.replace(target)
