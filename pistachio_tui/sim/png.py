"""Images for the simulator: a tiny PNG writer for outputs, Pillow for JPEG previews and re-encoding."""

from __future__ import annotations

import io
import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def solid_png(width: int, height: int, rgb: tuple[int, int, int], text: dict[str, str] | None = None) -> bytes:
    """An 8-bit RGB PNG of one colour, with ``text`` as tEXt chunks (ComfyUI stores prompt and workflow so)."""
    width = max(1, width)
    height = max(1, height)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + bytes(rgb) * width
    chunks = [_chunk(b"IHDR", header)]
    for key, value in (text or {}).items():
        chunks.append(_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1", "replace")))
    chunks.append(_chunk(b"IDAT", zlib.compress(row * height, 9)))
    chunks.append(_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def colour_of(value: int) -> tuple[int, int, int]:
    """ComfyUI's packed 0xRRGGBB colour integer as an RGB triple."""
    value = int(value) & 0xFFFFFF
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF


def solid_jpeg(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A JPEG of one colour, as a real server's latent previews are (quality 95)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (max(1, width), max(1, height)), rgb).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def reencode(data: bytes, image_format: str, quality: int, rgb_only: bool) -> bytes:
    """``/view?preview=<format>;<quality>``: the image re-encoded, as ComfyUI's ``view_image`` does."""
    from PIL import Image

    buffer = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        converted = image.convert("RGB") if image_format == "jpeg" or rgb_only else image
        converted.save(buffer, format=image_format, quality=quality)
    return buffer.getvalue()
