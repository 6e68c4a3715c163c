"""Resumable, verified downloads of model files (Hugging Face and plain URLs).

A download is written to ``<target>.part`` in the target's own folder and only
renamed to its final name once its size (and sha256, when known) check out and
its bytes look like what the name promises (``fix.content``: an HTML login
page is not a model). ComfyUI lists model files by extension
(``folder_paths.filter_files_extensions``), so ``model.safetensors.part`` never
shows up in a loader's list half-written (only folders registered with no
extension filter list every file), and the rename is atomic because it stays
on one file system. An interrupted or cancelled download leaves the ``.part``
behind; the next call resumes it with an HTTP ``Range`` request.

Large files from a server that honours ``Range`` come over several connections
at once (``fix.ranges``), each writing its own span of the one ``.part``; the
spans done so far are kept beside it in ``<target>.part.ranges``, so each
connection resumes on its own and a ``.part`` with holes is never taken for a
whole file.

The ``.part`` is opened without following symlinks and must be a regular file
of the user's: a link planted at that name cannot send the bytes elsewhere.
Credentials are attached per host on every hop of a redirect: the HF token
only to Hugging Face over https, nothing to any other host.

Requests are built by httpx; the bytes travel over ``fix.bulkhttp``, a lean
HTTP/1.1 transport, unless the environment names a proxy.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import os
import shutil
import ssl
import time
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx

from pistachio_tui import format as fmt
from pistachio_tui.fix.bulkhttp import BulkTransport
from pistachio_tui.fix.content import NotAModel, check_file
from pistachio_tui.redact import safe_url
from pistachio_tui.safefiles import UnsafeFile, open_own_regular

#: Room left free on the disk beyond the file itself, so a download never fills it to the last byte.
FREE_SPACE_MARGIN = 256 * 1024 * 1024
CHUNK_SIZE = 1024 * 1024
#: How many times a dropped connection is resumed within one call before giving up.
RETRIES = 3
#: Received bytes allowed to wait for the disk before the download waits for it.
WRITE_BATCH = 4 * 1024 * 1024
#: Seconds between two progress reports.
PROGRESS_EVERY_S = 0.1
#: Most connections for one large file when the server honours ``Range`` (files of 128 MB and more use all).
CONNECTIONS = 8
#: Files smaller than this come over one connection: more would not pay for their set-up.
PARALLEL_MIN = 32 * 1024 * 1024
MAX_REDIRECTS = 10
_HF_HOSTS = ("huggingface.co", "hf.co")
_SPEED_WINDOW_S = 5.0


class DownloadError(Exception):
    """A download failed; the message says what to do next."""


class GatedModel(DownloadError):
    """Hugging Face refused the file: a gated or private repository."""


class ChecksumMismatch(DownloadError):
    """The bytes received do not match the expected size or sha256."""


class WrongContent(ChecksumMismatch):
    """The bytes received are not the kind of file the name promises (an HTML page, a cut header)."""


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
    #: Connections in use (more than one for a parallel ranged download).
    connections: int = 1

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
    if not text or "\0" in text or pure.is_absolute() or Path(text).is_absolute() or ".." in pure.parts:
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
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return any(host == h or host.endswith("." + h) for h in _HF_HOSTS)


def hf_repo_of(url: str) -> str | None:
    """``owner/name`` of a Hugging Face file URL, for messages about gated repos."""
    if not is_hf_url(url):
        return None
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if parts and parts[0] in ("datasets", "spaces"):
        parts = parts[1:]
    return "/".join(parts[:2]) if len(parts) >= 2 else None


def credentials_for(url: str, token: str | None) -> dict[str, str]:
    """The headers a request to ``url`` may carry: the HF token to Hugging Face over https, else none."""
    if token and is_hf_url(url) and urlsplit(url).scheme == "https":
        return {"Authorization": f"Bearer {token}"}
    return {}


class SpeedMeter:
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
class Verifier:
    """What the finished file must be: its size, sha256 and kind (by its name)."""

    expected_size: int | None
    sha256: str | None
    name: str

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
        try:
            check_file(part, self.name)
        except NotAModel as exc:
            part.unlink(missing_ok=True)
            raise WrongContent(f"{exc}; the partial file was removed.") from None


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def finish(part: Path, target: Path, verifier: Verifier, digest: str | None) -> None:
    """Verify the whole ``.part`` and give it its final name (``digest`` hashed already, or None)."""
    if digest is None and verifier.sha256:
        digest = hash_file(part)
    verifier.check(part, digest)
    part.replace(target)


def open_part(part: Path, *, resume: bool) -> BinaryIO:
    """The ``.part`` opened for writing: appended to when resuming, else created empty.
    Never through a symlink, never someone else's file."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if resume else os.O_TRUNC)
    try:
        fd = open_own_regular(part, flags)
    except UnsafeFile as exc:
        raise UnsafePath(f"Refusing to write through {part}: {exc.strerror}.") from None
    return os.fdopen(fd, "ab" if resume else "wb")


def own_size(part: Path) -> int:
    """Size of an existing ``.part`` (0 when there is none), refused if it is not a regular file of ours."""
    try:
        info = part.lstat()
    except FileNotFoundError:
        return 0
    if part.is_symlink() or not part.is_file() or info.st_uid != os.getuid():
        raise UnsafePath(f"Refusing to resume {part}: it is not a regular file of yours (a symlink?); "
                         "remove it and retry.")
    return info.st_size


def hash_chunks(digest: hashlib._Hash, chunks: list[bytes]) -> None:
    for chunk in chunks:
        digest.update(chunk)


async def write_and_hash(write: Callable[[], None], chunks: list[bytes], digest: hashlib._Hash | None) -> None:
    """Run ``write`` (of ``chunks``) and feed ``chunks`` to ``digest``, each in a worker thread, at once.

    Once the network is read without copies, the file's writes and its sha256
    together are the slowest part of a download; both release the GIL, so two
    threads take about the time of the slower alone.
    """
    if digest is None:
        await asyncio.to_thread(write)
    else:
        await asyncio.gather(asyncio.to_thread(write), asyncio.to_thread(hash_chunks, digest, chunks))


class PartWriter:
    """Appends received bytes to the open ``.part`` file and hashes them, in worker threads.

    A write can stall for long on a network volume or under writeback pressure,
    and sha256 costs CPU for every byte: neither may run on the event loop the
    UI shares (hashlib and file writes release the GIL on large buffers, so the
    threads run beside the loop). One batch runs at a time and takes every
    chunk received so far, without copying them on the loop, so the file keeps
    up with the network and a slow disk gets bigger batches; past
    ``WRITE_BATCH`` bytes waiting, the download waits for the disk.
    """

    def __init__(self, fh: BinaryIO, digest: hashlib._Hash) -> None:
        self._fh = fh
        self._digest = digest
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._drainer: asyncio.Task[None] | None = None

    async def add(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._drainer is None or self._drainer.done():
            if self._drainer is not None:
                self._drainer.result()  # a failed write (disk full) surfaces here
            self._drainer = asyncio.create_task(self._drain())
        elif self._pending_size >= WRITE_BATCH:
            await asyncio.shield(self._drainer)

    async def flush(self) -> None:
        """Wait until every byte received is written (also after a cancel or a drop)."""
        if self._drainer is not None:
            # Shielded: a thread cannot be stopped, and the file must not close under it.
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        while self._pending:
            chunks, self._pending, self._pending_size = self._pending, [], 0
            await write_and_hash(functools.partial(self._write, chunks), chunks, self._digest)

    def _write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self._fh.write(chunk)


class ProgressReporter:
    """Progress of one download, told at most every ``PROGRESS_EVERY_S`` (and always at the end).

    Chunks arrive thousands of times a second on a fast link; a report per
    chunk would cost more than the bytes and flood the UI with stale states.
    """

    def __init__(self, job_url: str, target: Path, callback: ProgressCallback | None, total: int | None,
                 resumed_from: int) -> None:
        self._url, self._target, self._callback = job_url, target, callback
        self.total, self.resumed_from, self.done = total, resumed_from, resumed_from
        self.connections = 1
        self._meter = SpeedMeter()
        self._told_at = -PROGRESS_EVERY_S

    def add(self, n: int) -> None:
        self.done += n
        if self._callback is None:
            return
        now = time.monotonic()
        if now - self._told_at >= PROGRESS_EVERY_S or self.done == self.total:
            self._told_at = now
            self.tell()

    def tell(self) -> None:
        """Report the current state now (the last one, after the final bytes)."""
        if self._callback is None:
            return
        speed = self._meter.add(self.done)
        total = self.total
        eta = (total - self.done) / speed if total and speed > 0 else None
        self._callback(DownloadProgress(self._url, self._target, self.done, total, speed, eta,
                                        self.resumed_from, self.connections))


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings, built once: loading the trust store costs tens of
    milliseconds, paid by every download that brings its own client."""
    return httpx.create_ssl_context()


def download_client(timeout: float) -> httpx.AsyncClient:
    """The client of one download: over ``fix.bulkhttp`` (a third of httpx's CPU per byte), or over
    httpx's own transport when the environment names a proxy (httpx follows those only then)."""
    proxied = any(scheme in ("http", "https", "all") for scheme in urllib.request.getproxies())
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)), verify=tls_context(),
                             transport=None if proxied else BulkTransport(tls_context()))


def check_free_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + FREE_SPACE_MARGIN:
        raise DiskFull(
            f"Not enough disk space in {folder}: need {fmt.size(needed)} plus "
            f"{fmt.size(FREE_SPACE_MARGIN)} headroom, {fmt.size(free)} free. Free some space and retry."
        )


def disk_full(target: Path) -> DiskFull:
    return DiskFull(f"The disk holding {target.parent} filled up during the download; the partial "
                    "file was removed. Free some space and retry.")


def _number(text: str | None) -> int | None:
    """A byte count from a header: ASCII digits only (``'²'.isdigit()`` is true, ``int('²')`` fails)."""
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 20 else None


@dataclass
class Answer:
    """What the server said about the file before its bytes: status, sizes, checksums, kind."""

    response: httpx.Response
    #: Headers of every hop (redirects first): Hugging Face puts its metadata on the redirect.
    hops: list[httpx.Headers]

    @property
    def status(self) -> int:
        return self.response.status_code

    def hf_metadata(self) -> tuple[int | None, str | None]:
        """Size and sha256 that Hugging Face announces on the redirect of an LFS file."""
        for headers in self.hops:
            etag = headers.get("x-linked-etag", "").strip('"')
            if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag.lower()):
                return _number(headers.get("x-linked-size")), etag
        return None, None

    def content_range(self) -> tuple[int | None, int | None, int | None]:
        """(start, end, total) of ``bytes start-end/total`` or ``bytes */total``; None where absent or malformed."""
        value = self.response.headers.get("content-range", "")
        unit, _, rest = value.partition(" ")
        if unit.lower() != "bytes":
            return None, None, None
        span, _, total = rest.partition("/")
        first, _, last = span.partition("-")
        return _number(first), _number(last), _number(total)

    def length(self) -> int | None:
        return _number(self.response.headers.get("content-length"))


@asynccontextmanager
async def open_answer(http: httpx.AsyncClient, url: str, token: str | None,
                      headers: dict[str, str]) -> AsyncIterator[Answer]:
    """GET ``url`` as a stream, following redirects here so credentials are chosen per hop."""
    hops: list[httpx.Headers] = []
    for _ in range(MAX_REDIRECTS + 1):
        request = http.build_request("GET", url, headers={**headers, **credentials_for(url, token)})
        response = await http.send(request, stream=True, follow_redirects=False)
        if not response.is_redirect:
            break
        hops.append(response.headers)
        location = response.headers.get("location", "")
        await response.aclose()
        if not location:
            raise DownloadError(f"{_host(url)} redirected without saying where to.")
        url = urljoin(url, location)
    else:
        await response.aclose()
        raise DownloadError(f"Too many redirects from {safe_url(url)}.")
    hops.append(response.headers)
    try:
        yield Answer(response, hops)
    finally:
        await response.aclose()


def status_error(url: str, status: int) -> DownloadError:
    repo = hf_repo_of(url)
    if status in (401, 403) and repo:
        return GatedModel(
            f"This model is gated: accept the licence at https://huggingface.co/{repo} "
            "and set HF_TOKEN (env var or secrets.toml)."
        )
    if status in (401, 403):
        return DownloadError(f"{_host(url)} refused the download (HTTP {status}): it needs credentials.")
    if status == 404:
        return DownloadError(f"Not found (HTTP 404): {safe_url(url)} — check the URL or file name.")
    return DownloadError(f"{_host(url)} answered HTTP {status} for {safe_url(url)}; try again later.")


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or safe_url(url)
    except ValueError:
        return safe_url(url)


def size_mismatch(url: str, total: int, expected: int) -> ChecksumMismatch:
    return ChecksumMismatch(f"{safe_url(url)} is {total} bytes but {expected} were expected: "
                            "not the file the workflow names, or it changed upstream.")


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
    connections: int = CONNECTIONS,
) -> Path:
    """Download ``url`` to ``target`` (resuming ``target.part`` if present) and return ``target``.

    An existing ``target`` of the expected size (or of any size when none is
    expected) counts as done once its content checks out. ``token`` is sent as
    a Bearer token to Hugging Face hosts only (on every redirect hop too). When
    the server announces a sha256 (Hugging Face LFS files do) it is checked even
    if ``sha256`` is not given. Files of ``PARALLEL_MIN`` bytes or more come
    over up to ``connections`` ranged connections (``ranges.span_count``). Raises :class:`DownloadError`
    subclasses; on cancellation or a dropped connection the ``.part`` file is
    kept for resume.
    """
    from pistachio_tui.fix import ranges

    verifier = Verifier(expected_size, sha256, target.name)
    if target.is_symlink():
        raise UnsafePath(f"Refusing to write {target}: it is a symlink; remove it and retry.")
    if target.is_file() and expected_size in (None, target.stat().st_size):
        await asyncio.to_thread(_verify_present, target, verifier)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    owns_client = client is None
    http = client or download_client(timeout)
    job = ranges.Job(http, url, target, token, verifier, progress, max(1, connections), retries)
    try:
        attempt = 0
        while True:
            try:
                await ranges.attempt(job)
                return target
            except ranges.Dropped as exc:
                attempt += 1
                if attempt > retries:
                    raise DownloadError(
                        f"The connection to {_host(url)} kept dropping ({exc}); run the download "
                        "again to resume from where it stopped."
                    ) from None
            except httpx.ConnectError as exc:
                raise DownloadError(f"Cannot reach {_host(url)} ({exc}); check the network and the URL.") from None
            except httpx.HTTPError as exc:
                raise DownloadError(f"The download from {_host(url)} failed ({type(exc).__name__}); "
                                    "run it again to resume.") from None
    finally:
        if owns_client:
            await http.aclose()


def _verify_present(target: Path, verifier: Verifier) -> None:
    """A file already at the final name counts as done only if it is what a download would keep."""
    try:
        check_file(target, target.name)
    except NotAModel as exc:
        raise WrongContent(f"{target} is already there but {exc} Delete it and run again.") from None
    if verifier.sha256 and hash_file(target).lower() != verifier.sha256.lower():
        raise ChecksumMismatch(f"{target} is already there but its sha256 is not the expected one: "
                               "delete it and run again.")


def write_error(exc: OSError, part: Path, target: Path) -> DownloadError:
    """A failed write as the person should read it; a full disk also removes the useless partial."""
    if exc.errno == errno.ENOSPC:
        part.unlink(missing_ok=True)
        return disk_full(target)
    return DownloadError(f"Cannot write {part}: {exc.strerror or exc}.")
