"""One download attempt: over one connection, or over several ``Range`` connections at once.

A server that limits each connection (many CDNs and mirrors do) is only fast
with several; a large file from a server that answered our first request with
``206`` is therefore split into spans, one connection each, all writing into
the one ``.part`` at their own offsets. ``<target>.part.ranges`` records how
far each span got, so a cut span resumes on its own, the next call resumes
every span, and a ``.part`` with holes is never taken for a whole file (its
size is the full size from the start). The spans share the guarantees of the
single stream: the total size every answer announces must agree, the whole
file is verified (size, sha256, content) before its rename, a full disk
removes what is useless. A server that stops honouring ``Range`` mid-way
makes the download start again over one connection.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from pistachio_tui.fix.content import NotAModel, check_content_type
from pistachio_tui.fix.downloads import (
    PARALLEL_MIN,
    Answer,
    DownloadError,
    PartWriter,
    ProgressCallback,
    ProgressReporter,
    UnsafePath,
    Verifier,
    WrongContent,
    check_free_space,
    finish,
    open_answer,
    open_part,
    own_size,
    part_path,
    size_mismatch,
    status_error,
    write_and_hash,
    write_error,
)
from pistachio_tui.safefiles import UnsafeFile, atomic_write, open_own_regular

#: Bytes a span gathers before one write at its offset (in a thread, while it reads the next ones).
SPAN_WRITE = 2 * 1024 * 1024
#: How often the first connection's rate is looked at before more connections are opened.
SPLIT_PROBE_S = 0.2
#: More connections are opened once one alone would take longer than this for the rest of the file
#: (0: all of them at once).
SPLIT_IF_LONGER_S = 1.0
#: How often the spans' progress is saved beside the ``.part``.
PLAN_SAVE_EVERY_S = 1.0
#: Most buffers one ``pwritev`` takes (the system's ``IOV_MAX``).
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024
_TRANSIENT = (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class Dropped(Exception):
    """The connection broke mid-file; the caller may resume."""


class _RangesRefused(Exception):
    """A span request got the whole file (200) or another span: the server no longer honours ``Range``."""


@dataclass
class Job:
    """One file to fetch and how."""

    http: httpx.AsyncClient
    url: str
    target: Path
    token: str | None
    verifier: Verifier
    progress: ProgressCallback | None
    connections: int
    retries: int

    @property
    def part(self) -> Path:
        return part_path(self.target)

    @property
    def plan_path(self) -> Path:
        return self.part.with_name(self.part.name + ".ranges")


@dataclass
class Span:
    start: int
    #: One past the last byte.
    end: int
    done: int = 0

    @property
    def left(self) -> int:
        return self.end - self.start - self.done


@dataclass
class Plan:
    """The spans of a parallel download and how far each got."""

    total: int
    spans: list[Span]
    _saved_at: float = field(default=0.0, repr=False, compare=False)

    @classmethod
    def split(cls, total: int, count: int) -> Plan:
        step = -(-total // count)
        return cls(total, [Span(start, min(start + step, total)) for start in range(0, total, step)])

    @property
    def done(self) -> int:
        return sum(span.done for span in self.spans)

    def save(self, path: Path) -> None:
        body = {"total": self.total, "spans": [asdict(span) for span in self.spans]}
        atomic_write(path, json.dumps(body).encode())
        self._saved_at = time.monotonic()

    @classmethod
    def load(cls, job: Job) -> Plan | None:
        """The saved plan if it still describes the ``.part`` beside it; else both go."""
        path = job.plan_path
        if not path.exists() and not path.is_symlink():
            return None
        try:
            if path.is_symlink():
                raise ValueError("a symlink")
            raw = json.loads(path.read_text(encoding="utf-8"))
            plan = cls(int(raw["total"]), [Span(int(s["start"]), int(s["end"]), int(s["done"]))
                                           for s in raw["spans"]])
            expected = job.verifier.expected_size
            if own_size(job.part) != plan.total or (expected is not None and expected != plan.total) \
                    or not all(0 <= s.done <= s.end - s.start for s in plan.spans):
                raise ValueError("it does not match the partial file")
            return plan
        except (OSError, ValueError, KeyError, TypeError, UnsafePath):
            # Without a trustworthy record the partial file has holes we cannot find.
            path.unlink(missing_ok=True)
            job.part.unlink(missing_ok=True)
            return None


async def attempt(job: Job) -> None:
    """Fetch what is missing of ``job``'s file and give it its final name, or raise."""
    plan = Plan.load(job)
    if plan is not None:
        await _parallel(job, plan, None)
        return
    part, verifier = job.part, job.verifier
    have = own_size(part)
    if verifier.expected_size is not None:
        if have > verifier.expected_size:
            part.unlink()
            have = 0
        elif have and have == verifier.expected_size:
            await asyncio.to_thread(finish, part, job.target, verifier, None)
            return
        check_free_space(job.target.parent, verifier.expected_size - have)
    # Byte offsets of a resume must refer to the file itself, not a compressed stream.
    headers = {"Accept-Encoding": "identity"}
    if have or job.connections > 1:
        # Asked even from zero: a 206 says the server would take several connections.
        headers["Range"] = f"bytes={have}-"
    try:
        async with open_answer(job.http, job.url, job.token, headers) as answer:
            await _first_answer(job, answer, have)
    except _TRANSIENT as exc:
        raise Dropped(str(exc) or type(exc).__name__) from None


async def _first_answer(job: Job, answer: Answer, have: int) -> None:
    part, verifier, url = job.part, job.verifier, job.url
    if answer.status == 416 and have:
        if answer.content_range()[2] == have:
            await asyncio.to_thread(finish, part, job.target, verifier, None)
            return
        # The partial file is longer than the remote one: it is not a prefix of it.
        part.unlink()
        raise Dropped("partial file does not match the remote file; restarting")
    if answer.status not in (200, 206):
        raise status_error(url, answer.status)
    try:
        check_content_type(answer.response.headers.get("content-type"), job.target.name)
    except NotAModel as exc:
        raise WrongContent(str(exc)) from None
    hf_size, hf_sha = answer.hf_metadata()
    verifier.sha256 = verifier.sha256 or hf_sha
    if verifier.expected_size is None:
        verifier.expected_size = hf_size
    if answer.status == 206:
        start, _, total = answer.content_range()
        if start != have:
            part.unlink(missing_ok=True)
            raise Dropped(f"server resumed at byte {start}, not {have}; restarting")
        if total is None:
            raise DownloadError(f"{job.target.name}: the server's Content-Range "
                                f"({answer.response.headers.get('content-range', '')[:60]!r}) gives no usable "
                                "size, so a resume cannot be checked; try again later or another source.")
    else:
        # A 200 to a Range request: the server ignores ranges, so start over.
        have = 0
        total = answer.length()
    if total is not None and verifier.expected_size is not None and total != verifier.expected_size:
        part.unlink(missing_ok=True)
        raise size_mismatch(url, total, verifier.expected_size)
    total = total or verifier.expected_size
    if verifier.expected_size is None:
        verifier.expected_size = total
    if total is not None:
        check_free_space(job.target.parent, total - have)
    if answer.status == 206 and have == 0 and total is not None and total >= PARALLEL_MIN and job.connections > 1:
        await _parallel(job, Plan.split(total, span_count(total, job.connections)), answer)
        return
    await _single(job, answer, have, total)


def span_count(total: int, connections: int) -> int:
    """Connections for a file of ``total`` bytes: one per half ``PARALLEL_MIN``, up to ``connections``.

    A server that limits each connection makes the download as fast as the
    connections it has; a span much smaller than that would spend more on its
    set-up than it saves.
    """
    return max(2, min(connections, total // (PARALLEL_MIN // 2)))


async def _single(job: Job, answer: Answer, have: int, total: int | None) -> None:
    """The rest of the file over this one connection, appended to the ``.part`` and hashed on the way."""
    part = job.part
    digest = (await asyncio.to_thread(_hash_prefix, part)) if have else hashlib.sha256()
    progress = ProgressReporter(job.url, job.target, job.progress, total, have)
    try:
        with open_part(part, resume=bool(have)) as fh:
            writer = PartWriter(fh, digest)
            try:
                # No chunk size: httpx would hold bytes back to fill a chunk and lose them on a drop.
                async for chunk in answer.response.aiter_bytes():
                    await writer.add(chunk)
                    progress.add(len(chunk))
            finally:
                # What arrived is kept even on a drop or a cancel, so a resume starts after it.
                await writer.flush()
                progress.tell()
    except OSError as exc:
        raise write_error(exc, part, job.target) from None
    if total is not None and progress.done < total:
        raise Dropped(f"connection closed at {progress.done} of {total} bytes")
    await asyncio.to_thread(finish, part, job.target, job.verifier, digest.hexdigest())


def _hash_prefix(path: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest


class _Progress(ProgressReporter):
    """The spans' bytes added up, reported as one download; which spans have a connection."""

    def __init__(self, job: Job, plan: Plan, *, hash_prefix: bool) -> None:
        super().__init__(job.url, job.target, job.progress, plan.total, plan.done)
        self.plan = plan
        #: Writes running in threads: the file must not close under them.
        self.writes: set[asyncio.Future[None]] = set()
        self.started: set[int] = set()
        #: sha256 of the file's first ``prefix_end`` bytes, fed by the span at offset 0 as it writes,
        #: so only the rest is read back to verify the file (None: a resumed plan, hashed whole).
        self.prefix = hashlib.sha256() if hash_prefix else None
        self.prefix_end = 0

    def start(self, span: Span) -> None:
        self.started.add(span.start)
        self.connections = len(self.started)

    def absorb(self, span: Span) -> bool:
        """Extend ``span`` over the next one if no connection has started it yet (its answer
        runs to the end of the file, so the same connection carries on)."""
        spans = self.plan.spans
        after = [other for other in spans if other.start == span.end]
        if not after or after[0].start in self.started:
            return False
        span.end = after[0].end
        spans.remove(after[0])
        return True


async def _parallel(job: Job, plan: Plan, first: Answer | None) -> None:
    part = job.part
    try:
        if first is not None:
            fd = open_own_regular(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            # Full size from the start: a plan without its record is never mistaken for a whole file.
            os.ftruncate(fd, plan.total)
            await asyncio.to_thread(plan.save, job.plan_path)
        else:
            fd = open_own_regular(part, os.O_WRONLY)
    except UnsafeFile as exc:
        raise UnsafePath(f"Refusing to write through {part}: {exc.strerror}.") from None
    except OSError as exc:
        raise write_error(exc, part, job.target) from None
    progress = _Progress(job, plan, hash_prefix=first is not None and bool(job.verifier.sha256))
    tasks: list[asyncio.Task[None]] = []

    def start(span: Span, answer: Answer | None) -> None:
        progress.start(span)
        tasks.append(asyncio.create_task(_span(job, fd, plan, span, answer, progress)))

    try:
        try:
            if first is not None:
                start(plan.spans[0], first)
                await _until_worth_splitting(progress, tasks[0])
                if tasks[0].done():
                    tasks[0].result()  # its failure, before opening more connections
            for span in list(plan.spans):
                if span.left and span.start not in progress.started:
                    start(span, None)
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    except _RangesRefused as exc:
        _discard(job)
        job.connections = 1
        raise Dropped(f"{exc}; starting again over one connection") from None
    except OSError as exc:
        plan_path = job.plan_path
        error = write_error(exc, part, job.target)
        if not part.exists():
            plan_path.unlink(missing_ok=True)
        raise error from None
    except DownloadError:
        _discard(job)
        raise
    finally:
        if progress.writes:
            await asyncio.shield(asyncio.gather(*progress.writes, return_exceptions=True))
        os.close(fd)
        # Only an unfinished file needs its record (a whole one is verified and renamed next):
        # each save is an fsync.
        if part.exists() and any(span.left for span in plan.spans):
            await asyncio.shield(asyncio.to_thread(plan.save, job.plan_path))
    job.plan_path.unlink(missing_ok=True)
    digest = None
    if progress.prefix is not None:
        digest = await asyncio.to_thread(_hash_rest, part, progress.prefix, progress.prefix_end)
    await asyncio.to_thread(finish, part, job.target, job.verifier, digest)


async def _until_worth_splitting(progress: _Progress, first: asyncio.Task[None]) -> None:
    """Let the first connection run alone while it would finish the file soon on its own.

    On a fast link more connections only share the same CPU (and the file's
    sha256 then cannot be computed on the way); on a server that holds each
    connection to a rate they multiply the speed. The first connection's rate
    over its first moments tells which case this is.
    """
    if SPLIT_IF_LONGER_S <= 0:
        return
    seen, seen_at = progress.done, time.monotonic()
    while not first.done():
        await asyncio.wait([first], timeout=SPLIT_PROBE_S)
        now = time.monotonic()
        # The rate of the last moments, so a connection that stalls after a fast start still splits.
        rate = (progress.done - seen) / max(now - seen_at, 1e-3)
        seen, seen_at = progress.done, now
        if not first.done() and (progress.plan.total - progress.done) > rate * SPLIT_IF_LONGER_S:
            return


def _hash_rest(part: Path, digest: hashlib._Hash, offset: int) -> str:
    with part.open("rb") as fh:
        fh.seek(offset)
        for block in iter(lambda: fh.read(4 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _discard(job: Job) -> None:
    job.plan_path.unlink(missing_ok=True)
    job.part.unlink(missing_ok=True)


async def _span(job: Job, fd: int, plan: Plan, span: Span, answer: Answer | None, progress: _Progress) -> None:
    """Fill ``span``: resume it after each cut, up to ``job.retries`` times."""
    cuts = 0
    while span.left:
        try:
            if answer is not None:
                first, answer = answer, None
                await _pump(job, fd, plan, span, first, progress, open_ended=True)
                continue
            position = span.start + span.done
            headers = {"Accept-Encoding": "identity", "Range": f"bytes={position}-{span.end - 1}"}
            async with open_answer(job.http, job.url, job.token, headers) as reply:
                if reply.status == 200:
                    raise _RangesRefused("the server stopped honouring Range requests")
                if reply.status != 206:
                    raise status_error(job.url, reply.status)
                start, _, total = reply.content_range()
                if total != plan.total:
                    raise size_mismatch(job.url, total, plan.total) if total is not None else \
                        _RangesRefused("the server answered a Range request without the file's size")
                if start != position:
                    raise _RangesRefused(f"the server sent byte {start} on, not {position} on")
                await _pump(job, fd, plan, span, reply, progress, open_ended=False)
        except _TRANSIENT as exc:
            cuts += 1
            if cuts > job.retries:
                raise Dropped(f"one of {len(plan.spans)} connections kept dropping ({exc or type(exc).__name__})") \
                    from None
            continue
        if span.left:
            # The answer ended cleanly but early (no length to hold it to): count it as a cut.
            cuts += 1
            if cuts > job.retries:
                raise Dropped(f"one of {len(plan.spans)} connections kept ending early")


async def _pump(job: Job, fd: int, plan: Plan, span: Span, answer: Answer, progress: _Progress, *,
                open_ended: bool) -> None:
    """Copy ``answer``'s body into ``span`` until it is full or the body ends; an ``open_ended``
    answer (to the end of the file) goes on into the next spans while no connection has them."""
    chunks: list[bytes] = []
    gathered = 0
    #: The one write of this span in a thread (its size, and whether it fed the prefix hash),
    #: so the next bytes are read while it runs; the span counts them once it is done.
    in_flight: tuple[asyncio.Future[None], int, bool] | None = None

    async def settle() -> None:
        nonlocal in_flight
        if in_flight is None:
            return
        write, size, hashed = in_flight
        in_flight = None
        await asyncio.shield(write)
        span.done += size
        if hashed:
            progress.prefix_end = span.start + span.done
        if time.monotonic() - plan._saved_at >= PLAN_SAVE_EVERY_S:
            await asyncio.to_thread(plan.save, job.plan_path)

    async def flush() -> None:
        nonlocal chunks, gathered, in_flight
        await settle()
        if not chunks:
            return
        batch, size = chunks, gathered
        chunks, gathered = [], 0
        offset = span.start + span.done
        # Only bytes that follow the hashed prefix, and only once the write before them is done.
        digest = progress.prefix if progress.prefix is not None and offset == progress.prefix_end else None
        write = asyncio.ensure_future(write_and_hash(functools.partial(_pwrite_all, fd, batch, offset), batch, digest))
        progress.writes.add(write)
        write.add_done_callback(progress.writes.discard)
        in_flight = (write, size, digest is not None)

    def room_left() -> int:
        return span.left - gathered - (in_flight[1] if in_flight else 0)

    async def flush_all() -> None:
        await flush()
        await settle()

    try:
        async for chunk in answer.response.aiter_bytes():
            room = room_left()
            while open_ended and len(chunk) >= room and progress.absorb(span):
                room = room_left()
            if len(chunk) > room:
                # The first answer runs to the end of the file; the rest belongs to the next span.
                chunk = chunk[:room]
            chunks.append(chunk)
            gathered += len(chunk)
            progress.add(len(chunk))
            if gathered >= SPAN_WRITE:
                await flush()
            if len(chunk) == room:
                break
    finally:
        # Bytes that arrived are written even on a cut or a cancel, so the span resumes after them.
        await asyncio.shield(flush_all())
        progress.tell()


def _pwrite_all(fd: int, chunks: list[bytes], offset: int) -> None:
    # The chunks as they came, without joining them (a copy of every byte): one vectored write
    # for up to IOV_MAX of them.
    pending = [memoryview(chunk) for chunk in chunks]
    while pending:
        batch = pending[:_IOV_MAX]
        written = os.pwritev(fd, batch, offset)
        offset += written
        while written:
            if written >= len(pending[0]):
                written -= len(pending.pop(0))
            else:
                pending[0] = pending[0][written:]
                written = 0
