"""Files the simulator holds: saved outputs, previews and uploaded inputs, kept in memory and bounded."""

from __future__ import annotations

import mimetypes
import random
import string
from collections import OrderedDict

#: Most files kept; the oldest go first (a real server's disk is not infinite either).
MAX_FILES = 2000

FileKey = tuple[str, str, str]  # (type, subfolder, filename)


class FileStore:
    """Files by ``(type, subfolder, filename)`` with ComfyUI's naming for new outputs."""

    def __init__(self) -> None:
        self._files: OrderedDict[FileKey, bytes] = OrderedDict()
        # One counter per prefix, and PreviewImage makes a new random prefix per run: kept
        # to the MAX_FILES most recent, since an older prefix has no stored file left anyway.
        self._counters: OrderedDict[tuple[str, str, str], int] = OrderedDict()

    def put(self, kind: str, subfolder: str, filename: str, data: bytes) -> None:
        key = (kind, subfolder, filename)
        self._files[key] = data
        self._files.move_to_end(key)
        while len(self._files) > MAX_FILES:
            self._files.popitem(last=False)

    def get(self, kind: str, subfolder: str, filename: str) -> bytes | None:
        return self._files.get((kind, subfolder, filename))

    def exists(self, kind: str, subfolder: str, filename: str) -> bool:
        return (kind, subfolder, filename) in self._files

    def names(self, kind: str) -> list[str]:
        """Filenames of one type (``subfolder/name`` when in a subfolder), oldest first."""
        return [f"{sub}/{name}" if sub else name for (k, sub, name) in self._files if k == kind]

    def next_output_name(self, kind: str, prefix: str, extension: str = "png") -> tuple[str, str]:
        """``(subfolder, filename)`` for the next file of a prefix: ``name_00001_.png`` like SaveImage."""
        subfolder, _, base = prefix.replace("\\", "/").rpartition("/")
        key = (kind, subfolder, base)
        counter = self._counters.pop(key, 0) + 1
        self._counters[key] = counter
        while len(self._counters) > MAX_FILES:
            self._counters.popitem(last=False)
        return subfolder, f"{base}_{counter:05}_.{extension}"

    @staticmethod
    def temp_prefix() -> str:
        """PreviewImage's random prefix for temporary files."""
        return "ComfyUI_temp_" + "".join(random.choices(string.ascii_lowercase, k=5))

    def free_name(self, kind: str, subfolder: str, filename: str) -> str:
        """``filename``, or ``name (1).ext`` style when taken, as /upload/image renames."""
        if not self.exists(kind, subfolder, filename):
            return filename
        stem, dot, ext = filename.rpartition(".")
        if not dot:
            stem, ext = filename, ""
        n = 1
        while True:
            candidate = f"{stem} ({n}).{ext}" if dot else f"{stem} ({n})"
            if not self.exists(kind, subfolder, candidate):
                return candidate
            n += 1


def content_type(filename: str) -> str:
    """MIME type for a served file."""
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
