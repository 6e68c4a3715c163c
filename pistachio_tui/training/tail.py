"""Follow a growing log file like ``tail -F``, by polling.

:class:`LogFollower` is a plain synchronous reader: each :meth:`LogFollower.read`
returns the complete lines added since the last call. It never blocks waiting
for data, so a caller on an event loop runs it in a thread
(``await asyncio.to_thread(follower.read)``) — :func:`follow` does exactly that.
Polling instead of inotify works the same on network filesystems, in
containers and on RunPod volumes, where change notifications are unreliable.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["LogChunk", "LogFollower", "follow"]

#: How much one :meth:`LogFollower.read` returns at most, so a huge existing
#: log is consumed in bounded slices instead of one giant string.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
#: A partial line is held back at most this long before it is returned anyway.
MAX_LINE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class LogChunk:
    """Complete lines read in one call.

    ``first_line_no`` is the 1-based number of ``lines[0]`` in the current file.
    ``reset`` is true when the file was truncated or replaced (rotation) before
    these lines: numbering restarted and parsers should drop their state.
    """
    lines: list[str]
    first_line_no: int
    reset: bool = False


class LogFollower:
    """Reads new complete lines of ``path``; survives truncation and rotation.

    A partial last line (no newline yet) is held back until its newline
    arrives. A missing file is not an error: reads return nothing until it
    appears, as with ``tail -F``.
    """

    def __init__(self, path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 from_end: bool = False) -> None:
        self.path = Path(path)
        self._max_bytes = max_bytes
        self._from_end = from_end
        self._file: BinaryIO | None = None
        self._inode: tuple[int, int] | None = None
        self._pos = 0
        self._pending = b""
        self._next_line_no = 1
        self._reset_pending = False

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> LogFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def position(self) -> int:
        """Byte offset up to which complete lines were returned."""
        return self._pos - len(self._pending)

    def read(self) -> LogChunk:
        """New complete lines (at most about ``max_bytes``); empty when nothing new."""
        self._check_replaced()
        if self._file is None and not self._open():
            return LogChunk([], self._next_line_no)
        fh = self._file
        assert fh is not None  # opened just above
        size = os.fstat(fh.fileno()).st_size
        if size < self._pos:
            # Truncated in place (``> log`` or a logger reopening with "w").
            self._restart_numbering()
            self._pos = 0
        fh.seek(self._pos)
        parts = []
        # A line longer than max_bytes is read on to its end, so an empty result
        # always means "nothing complete yet", never "call again".
        while data := fh.read(self._max_bytes):
            parts.append(data)
            self._pos += len(data)
            if b"\n" in data or len(data) < self._max_bytes:
                break
        return self._split(b"".join(parts))

    def _split(self, data: bytes) -> LogChunk:
        buf = self._pending + data
        cut = buf.rfind(b"\n")
        if cut < 0 and len(buf) > MAX_LINE_BYTES:
            cut = len(buf)  # a runaway line (progress bars without newline): hand it out in pieces
            buf += b"\n"
        if cut < 0:
            self._pending = buf
            lines: list[str] = []
        else:
            self._pending = buf[cut + 1:]
            lines = buf[:cut].decode("utf-8", errors="replace").split("\n")
        chunk = LogChunk(lines, self._next_line_no, self._reset_pending and bool(lines))
        if lines:
            self._reset_pending = False
        self._next_line_no += len(lines)
        return chunk

    def _open(self) -> bool:
        try:
            self._file = open(self.path, "rb")
        except OSError:
            return False
        st = os.fstat(self._file.fileno())
        self._inode = (st.st_dev, st.st_ino)
        self._pos = st.st_size if self._from_end else 0
        # Only the very first open may start at the end; a rotated-in file is read whole.
        self._from_end = False
        return True

    def _check_replaced(self) -> None:
        """Rotation: the path now names another file. Finish the old one first."""
        if self._file is None:
            return
        try:
            st = os.stat(self.path)
        except OSError:
            return  # moved away, the new one not created yet: keep reading the old
        if (st.st_dev, st.st_ino) == self._inode:
            return
        old_size = os.fstat(self._file.fileno()).st_size
        if self._pos < old_size:
            return  # drain what the old file still has before switching
        self.close()
        self._restart_numbering()

    def _restart_numbering(self) -> None:
        self._pending = b""
        self._next_line_no = 1
        self._reset_pending = True


async def follow(path: Path | str, *, interval: float = 1.0,
                 from_end: bool = False) -> AsyncIterator[LogChunk]:
    """Yield chunks of new lines forever, polling every ``interval`` seconds.

    Reads run in a worker thread so a large backlog never stalls the event
    loop; a backlog is delivered in several chunks back to back.
    """
    follower = LogFollower(path, from_end=from_end)
    try:
        while True:
            chunk = await asyncio.to_thread(follower.read)
            if chunk.lines or chunk.reset:
                yield chunk
                continue
            await asyncio.sleep(interval)
    finally:
        follower.close()
