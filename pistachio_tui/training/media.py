"""Sizes and lengths of dataset files, read from their headers only.

Images through Pillow (no pixel decoding). MP4/MOV videos through their ISO
base media boxes: ``moov/mvhd`` gives the time scale, each ``trak/tkhd`` the
track's duration and display size; the video track is the one with a size.
Other containers (WebM, MKV) are measured with ``ffprobe`` when it is
installed, else reported as unknown.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

__all__ = ["VideoInfo", "image_size", "video_info", "MediaUnreadable"]

_CONTAINERS = {b"moov", b"trak", b"mdia", b"edts"}


class MediaUnreadable(Exception):
    """The file's header could not be read; the message says why."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    seconds: float

    def frames_at(self, fps: float) -> int:
        """Frames the trainer sees after resampling to the model's rate."""
        return int(self.seconds * fps)


def image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise MediaUnreadable(f"not a readable image ({exc.__class__.__name__})") from None


def _boxes(fh: BinaryIO, end: int):
    while fh.tell() + 8 <= end:
        start = fh.tell()
        size, kind = struct.unpack(">I4s", fh.read(8))
        header = 8
        if size == 1:
            size = struct.unpack(">Q", fh.read(8))[0]
            header = 16
        elif size == 0:
            size = end - start
        if size < header:
            return
        yield kind, start + header, start + size
        fh.seek(start + size)


def _mp4_info(path: Path) -> VideoInfo:
    timescale = None
    best: tuple[int, int, int] | None = None
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        stack = [(0, fh.tell())]
        while stack:
            start, end = stack.pop()
            fh.seek(start)
            for kind, body, box_end in list(_boxes(fh, end)):
                fh.seek(body)
                if kind in _CONTAINERS:
                    stack.append((body, box_end))
                elif kind == b"mvhd":
                    version = fh.read(1)[0]
                    fh.read(3)
                    fh.read(16 if version == 1 else 8)
                    timescale = struct.unpack(">I", fh.read(4))[0]
                elif kind == b"tkhd":
                    version = fh.read(1)[0]
                    fh.read(3)
                    if version == 1:
                        fh.read(16 + 4 + 4)
                        duration = struct.unpack(">Q", fh.read(8))[0]
                    else:
                        fh.read(8 + 4 + 4)
                        duration = struct.unpack(">I", fh.read(4))[0]
                    fh.read(8 + 2 + 2 + 2 + 2 + 36)
                    width, height = (v >> 16 for v in struct.unpack(">II", fh.read(8)))
                    if width and height and (best is None or duration > best[2]):
                        best = (width, height, duration)
    if not timescale or best is None:
        raise MediaUnreadable("no video track found in the MP4/MOV header")
    return VideoInfo(best[0], best[1], best[2] / timescale)


def _ffprobe_info(path: Path) -> VideoInfo:
    if shutil.which("ffprobe") is None:
        raise MediaUnreadable(f"cannot read the length of {path.suffix} files without ffprobe (install ffmpeg)")
    try:
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                              "stream=width,height:format=duration", "-of", "json", str(path)],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        data = json.loads(out)
        stream = data["streams"][0]
        return VideoInfo(int(stream["width"]), int(stream["height"]), float(data["format"]["duration"]))
    except (subprocess.SubprocessError, OSError, ValueError, KeyError, IndexError) as exc:
        raise MediaUnreadable(f"ffprobe could not read it ({exc.__class__.__name__})") from None


def video_info(path: Path) -> VideoInfo:
    if path.suffix.lower() in (".mp4", ".mov", ".m4v"):
        try:
            return _mp4_info(path)
        except (OSError, struct.error, IndexError) as exc:
            raise MediaUnreadable(f"not a readable MP4/MOV ({exc.__class__.__name__})") from None
    return _ffprobe_info(path)
