"""Line index of a multi-gigabyte log, built in a background thread.

Like a pager, the file is never loaded: a thread reads it in fixed-size
chunks and, for every ``block`` bytes (64 KiB by default), keeps the number of
newlines before that block in an ``array('Q')`` — 8 bytes per block, 128 KB
for a 1 GB log, so memory stays about flat whatever the log's size. Counting
newlines per block is one vectorised compare and count over each chunk
(numpy, C speed), with no work per line: indexing runs at about ``wc -l``'s
speed. Reading line N looks up the block holding its start and finds it
within that one block (a 64 KiB read: well under a millisecond). Lines can
be read, and searched, while indexing is still under way; after reaching the
end the thread keeps indexing what the trainer appends (and starts over if
the file is truncated or replaced).

The UI runs nothing itself: create the index, poll :attr:`LogIndex.progress`
for a progress bar, ask for the visible lines with :meth:`LogIndex.lines`.
Calls are thread-safe and short (one seek and a bounded read), but they do
blocking IO, so run searches in a worker.
"""

from __future__ import annotations

import os
import re
import threading
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["LogIndex", "ScanProgress"]

#: Read and scanned at a time (rounded to whole blocks). The compare and the counts each pass
#: over the chunk; at 1 MiB it stays in the CPU cache between them, which makes indexing about
#: twice as fast as with 8 MiB chunks (measured in benchmarks/bench_biglog.py against ``wc -l``).
_CHUNK = 1024 * 1024
#: Bytes per index entry. Counting newlines per block (``count_nonzero``) instead of finding
#: every newline's offset (``flatnonzero``) halves the indexing time; a line is then found
#: by reading its block, which a 64 KiB read keeps cheap.
BLOCK = 64 * 1024
_SEARCH_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ScanProgress:
    scanned: int
    size: int
    lines: int
    #: True once the index has caught up with the end of the file.
    caught_up: bool

    @property
    def fraction(self) -> float:
        return 1.0 if self.size == 0 else min(1.0, self.scanned / self.size)


class LogIndex:
    """Newline counts per block of ``path``; see the module docstring."""

    def __init__(self, path: Path | str, *, block: int = BLOCK, follow: bool = True,
                 poll_interval: float = 0.5, start: bool = True) -> None:
        if block < 1:
            raise ValueError("block must be at least 1 byte")
        self.path = Path(path)
        self.block = block
        self._chunk = max(block, _CHUNK // block * block)
        self._follow = follow
        self._poll = poll_interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._wake = threading.Event()
        self._reset_state()
        self._thread = threading.Thread(target=self._run, name=f"logindex:{self.path.name}", daemon=True)
        if start:
            self._thread.start()

    def _reset_state(self) -> None:
        # Newlines before byte 0, block, 2*block, ... (every block boundary scanned so far).
        self._counts = array("Q", [0])
        self._newlines = 0
        self._scanned = 0
        self._size = 0
        self._caught_up = False
        self._last_byte_open = False
        self._identity: tuple[int, int] | None = None
        self._generation = getattr(self, "_generation", -1) + 1

    # -- public API -----------------------------------------------------------

    @property
    def progress(self) -> ScanProgress:
        with self._lock:
            return ScanProgress(self._scanned, max(self._size, self._scanned), self._line_count(), self._caught_up)

    @property
    def line_count(self) -> int:
        """Lines indexed so far (a last line without newline counts once indexing caught up)."""
        with self._lock:
            return self._line_count()

    @property
    def index_bytes(self) -> int:
        """Memory held by the offset index itself."""
        with self._lock:
            return self._counts.itemsize * len(self._counts)

    @property
    def generation(self) -> int:
        """Bumps when the file was truncated or replaced and the index started over."""
        return self._generation

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the index has caught up with the file (False on timeout); for scripts and tests."""
        return self._idle.wait(timeout)

    def check_now(self) -> None:
        """Look for appended data now instead of at the next poll; :meth:`wait` then waits for it."""
        self._idle.clear()
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __enter__(self) -> LogIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lines(self, start: int, count: int) -> list[str]:
        """Up to ``count`` lines from line ``start`` (0-based), without newlines."""
        if count <= 0 or start < 0:
            return []
        with self._lock:
            count = min(count, self._line_count() - start)
            end = self._scanned
        offset = self._offset_of(start)
        if offset is None or count <= 0:
            return []
        out: list[str] = []
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            while len(out) < count and fh.tell() < end:
                out.append(_decode(fh.readline()))
        return out

    def line_of_offset(self, offset: int) -> int:
        """Line number holding byte ``offset`` (must be within the indexed part)."""
        block = offset // self.block
        with self._lock:
            before = self._counts[block]
        with open(self.path, "rb") as fh:
            fh.seek(block * self.block)
            data = fh.read(offset - block * self.block)
        return before + data.count(b"\n")

    def find(self, pattern: str, from_line: int, *, backwards: bool = False,
             regex: bool = False, ignore_case: bool = True) -> int | None:
        """Line number of the next match after ``from_line`` (or previous, ``backwards``), or None.

        Only the indexed part is searched; the starting line itself is skipped
        so repeated calls step through matches.
        """
        flags = re.IGNORECASE if ignore_case else 0
        needle = re.compile(pattern.encode() if regex else re.escape(pattern.encode()), flags)
        with self._lock:
            end = self._scanned
        if backwards:
            if from_line <= 0:
                return None
            limit = self._offset_of(from_line)
            return self._search_back(needle, limit)
        start = self._offset_of(from_line + 1)
        return self._search_forward(needle, start, end) if start is not None else None

    # -- internals -------------------------------------------------------------

    def _line_count(self) -> int:
        tail = 1 if self._caught_up and self._scanned > 0 and self._last_byte_open else 0
        return self._newlines + tail

    def _offset_of(self, line: int) -> int | None:
        """Byte offset where ``line`` starts, or None if past the indexed lines."""
        if line == 0:
            return 0 if self.line_count else None
        with self._lock:
            if line >= self._line_count():
                return None
            # The last block with fewer than ``line`` newlines before it holds newline number ``line``.
            block = bisect_left(self._counts, line) - 1
            nth = line - self._counts[block]
            begin = block * self.block
            end = min(begin + self.block, self._scanned)
        with open(self.path, "rb") as fh:
            fh.seek(begin)
            data = fh.read(end - begin)
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        # Fewer newlines than counted: the file was cut under us, and the index starts over.
        return begin + int(newlines[nth - 1]) + 1 if nth <= len(newlines) else None

    def _search_forward(self, needle: re.Pattern[bytes], start: int, end: int) -> int | None:
        with open(self.path, "rb") as fh:
            pos = start
            while pos < end:
                fh.seek(pos)
                data = fh.read(min(_SEARCH_CHUNK, end - pos))
                if not data:
                    return None
                cut = data.rfind(b"\n") + 1 if pos + len(data) < end else len(data)
                if cut == 0:
                    cut = len(data)  # one line longer than a chunk: search it whole anyway
                m = needle.search(data, 0, cut)
                if m:
                    return self.line_of_offset(pos + m.start())
                pos += cut
        return None

    def _search_back(self, needle: re.Pattern[bytes], limit: int | None) -> int | None:
        with self._lock:
            limit = self._scanned if limit is None else limit
        with open(self.path, "rb") as fh:
            end = limit
            while end > 0:
                start = max(0, end - _SEARCH_CHUNK)
                fh.seek(start)
                data = fh.read(end - start)
                # A chunk that starts mid-line leaves that line to the next round.
                first = data.find(b"\n") + 1 if start > 0 else 0
                last = None
                for m in needle.finditer(data, first):
                    last = m
                if last is not None:
                    return self.line_of_offset(start + last.start())
                end = start + first
        return None

    def _run(self) -> None:
        buf = bytearray(self._chunk)
        view = memoryview(buf)
        fh = None
        try:
            while not self._stop.is_set():
                if fh is None:
                    fh = self._open()
                    if fh is None:
                        self._sleep()
                        continue
                if self._replaced(fh):
                    fh.close()
                    fh = None
                    with self._lock:
                        self._reset_state()
                    continue
                # Always from the last whole block, so a block cut by the end of the file is
                # counted again, whole, once the trainer has appended to it.
                boundary = (len(self._counts) - 1) * self.block
                fh.seek(boundary)
                n = fh.readinto(buf)
                if boundary + n > self._scanned:
                    self._idle.clear()
                    self._index_chunk(np.frombuffer(view[:n], dtype=np.uint8), boundary)
                    continue
                with self._lock:
                    self._caught_up = True
                self._idle.set()
                if not self._follow:
                    return
                self._sleep()
        finally:
            if fh is not None:
                fh.close()

    def _sleep(self) -> None:
        self._wake.wait(self._poll)
        self._wake.clear()

    def _open(self):
        try:
            fh = open(self.path, "rb", buffering=0)
        except OSError:
            return None
        st = os.fstat(fh.fileno())
        with self._lock:
            self._identity = (st.st_dev, st.st_ino)
            self._size = st.st_size
        return fh

    def _replaced(self, fh) -> bool:
        """Truncated below what we indexed, or the path now names another file."""
        size = os.fstat(fh.fileno()).st_size
        try:
            st = os.stat(self.path)
            moved = (st.st_dev, st.st_ino) != self._identity
        except OSError:
            moved = False
        with self._lock:
            self._size = max(size, self._size) if not moved else self._size
            truncated = size < self._scanned
        return truncated or (moved and fh.tell() >= size)

    def _index_chunk(self, chunk: np.ndarray, base: int) -> None:
        """Count the newlines of ``chunk``, read at block boundary ``base``, block by block."""
        newlines = chunk == 10
        block = self.block
        counted = self._counts[-1]
        whole: list[int] = []
        for start in range(0, len(chunk), block):
            counted += int(np.count_nonzero(newlines[start:start + block]))
            if start + block <= len(chunk):
                whole.append(counted)
        with self._lock:
            self._counts.extend(whole)
            self._newlines = counted
            self._scanned = base + len(chunk)
            self._size = max(self._size, self._scanned)
            self._last_byte_open = chunk[-1] != 10
            self._caught_up = False


def _decode(raw: bytes) -> str:
    return raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", errors="replace")
