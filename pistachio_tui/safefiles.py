"""Writing files so that a crash, a full disk or a planted symlink never leaves a wrong file under a final name.

Temporary files get a fresh random name created with ``O_EXCL`` (``mkstemp``):
a symlink or file someone planted at a predictable temporary name can neither
redirect the write nor be picked up as ours. ``os.replace`` then swaps the name
itself, never following a symlink that sits at the final name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class UnsafeFile(OSError):
    """A file at a name we write to is not a regular file of ours (a symlink, a device, another user's)."""


@contextlib.contextmanager
def temp_beside(path: Path, *, mode: int = 0o644) -> Iterator[tuple[BinaryIO, Path]]:
    """An open, private temporary file in ``path``'s folder, removed unless the caller
    renamed it into place; ``mode`` is applied before the caller renames it."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:100]}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            yield fh, tmp
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` so that ``path`` appears only whole (fsynced), or not at all."""
    with temp_beside(path, mode=mode) as (fh, tmp):
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
        os.replace(tmp, path)


def open_own_regular(path: Path, flags: int) -> int:
    """``os.open`` that refuses a symlink at ``path`` and, for an existing file, anything but a
    regular file owned by this user; the check is made on the opened file, so it cannot be swapped."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(exc.errno, f"{path} is a symlink; remove it and retry") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        os.close(fd)
        raise UnsafeFile(errno.EPERM, f"{path} is not a regular file of yours; remove it and retry")
    return fd
