"""Workflow text embedded in images ComfyUI saves.

PNG: ``tEXt``/``zTXt``/``iTXt`` chunks keyed ``prompt`` and ``workflow``.
WebP: an ``EXIF`` chunk whose IFD0 ASCII tags (0x010F Make, 0x0110 Model, …)
hold strings ``"workflow:{…}"`` / ``"prompt:{…}"``, the way ComfyUI's WebP
savers write them. Both readers return raw text per key and never raise
anything but :class:`WorkflowError`.

Compressed text is a memory bomb waiting to happen (a few KB can inflate to
gigabytes): only the chunks asked for are inflated, each up to
``MAX_TEXT_BYTES``, all of them together up to ``MAX_TEXT_TOTAL``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Collection

from pistachio_tui.workflow.errors import WorkflowError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Decompressed text chunks larger than this are refused (a crafted file could expand forever).
MAX_TEXT_BYTES = 64 * 1024 * 1024
#: All text chunks read from one image together.
MAX_TEXT_TOTAL = 96 * 1024 * 1024


def is_png(data: bytes) -> bool:
    return data.startswith(PNG_SIGNATURE)


def is_webp(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def _inflate(blob: bytes, file: str | None, where: str, limit: int) -> bytes:
    decomp = zlib.decompressobj()
    try:
        out = decomp.decompress(blob, limit)
    except zlib.error as exc:
        raise WorkflowError(f"compressed text does not inflate ({exc})", file=file, path=where) from None
    if decomp.unconsumed_tail:
        if limit < MAX_TEXT_BYTES:
            raise WorkflowError(f"the image's text entries inflate to more than {MAX_TEXT_TOTAL >> 20} MB in "
                                "total (the limit for one image)", file=file, path=where)
        raise WorkflowError(f"compressed text is larger than {MAX_TEXT_BYTES >> 20} MB (the limit for one "
                            "text entry)", file=file, path=where)
    return out


def png_text(data: bytes, file: str | None = None, keys: Collection[str] | None = None) -> dict[str, str]:
    """Text chunks of a PNG as ``{keyword: text}`` (first occurrence wins): those named in
    ``keys``, or all of them; chunks not asked for are never inflated."""
    if not is_png(data):
        raise WorkflowError("not a PNG file", file=file, path="png", expected="the PNG signature")
    texts: dict[str, str] = {}
    budget = MAX_TEXT_TOTAL
    pos = len(PNG_SIGNATURE)
    index = 0
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        where = f"png.chunk[{index}]"
        if len(body) < length:
            raise WorkflowError("chunk runs past the end of the file", file=file, path=where, expected=f"{length} bytes")
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            key = _chunk_key(body, file, where)
            if key not in texts and (keys is None or key in keys):
                texts[key] = _decode_text_chunk(ctype, body, file, where, min(budget, MAX_TEXT_BYTES))
                budget -= len(texts[key])
        if ctype == b"IEND":
            break
        pos += 12 + length
        index += 1
    return texts


def _chunk_key(body: bytes, file: str | None, where: str) -> str:
    key_raw, sep, _ = body.partition(b"\x00")
    if not sep:
        raise WorkflowError("text chunk without a keyword separator", file=file, path=where, expected="keyword\\0text")
    return key_raw.decode("latin-1")


def _decode_text_chunk(ctype: bytes, body: bytes, file: str | None, where: str, limit: int) -> str:
    rest = body.partition(b"\x00")[2]
    if ctype == b"tEXt":
        return rest.decode("latin-1")
    if ctype == b"zTXt":
        return _inflate(rest[1:], file, where, limit).decode("latin-1")
    if len(rest) < 2:
        raise WorkflowError("iTXt chunk too short", file=file, path=where, expected="compression flag and method")
    compressed = rest[0] == 1
    _lang, _, rest = rest[2:].partition(b"\x00")
    _translated, _, text = rest.partition(b"\x00")
    if compressed:
        text = _inflate(text, file, where, limit)
    return text.decode("utf-8", errors="replace")


def _riff_chunks(data: bytes):
    pos = 12
    while pos + 8 <= len(data):
        ctype = data[pos:pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4:pos + 8])
        yield ctype, data[pos + 8:pos + 8 + length]
        pos += 8 + length + (length & 1)


def webp_text(data: bytes, file: str | None = None) -> dict[str, str]:
    """``{key: text}`` from ``key:text`` strings in a WebP's EXIF IFD0."""
    if not is_webp(data):
        raise WorkflowError("not a WebP file", file=file, path="webp", expected="a RIFF/WEBP header")
    for ctype, body in _riff_chunks(data):
        if ctype == b"EXIF":
            return exif_text(body, file)
    return {}


def exif_text(tiff: bytes, file: str | None = None) -> dict[str, str]:
    """Prefixed strings (``workflow:…``) found in the first IFD of TIFF/EXIF data."""
    if tiff.startswith(b"Exif\x00\x00"):
        tiff = tiff[6:]
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        raise WorkflowError("EXIF data has no TIFF header", file=file, path="webp.EXIF", expected="II or MM byte order")
    endian = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(endian + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        raise WorkflowError("EXIF IFD offset is outside the data", file=file, path="webp.EXIF")
    (count,) = struct.unpack(endian + "H", tiff[ifd:ifd + 2])
    texts: dict[str, str] = {}
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i: ifd + 14 + 12 * i]
        if len(entry) < 12:
            break
        _tag, ftype, n, offset = struct.unpack(endian + "HHII", entry)
        if ftype not in (2, 7):  # ASCII or UNDEFINED
            continue
        raw = entry[8:8 + n] if n <= 4 else tiff[offset:offset + n]
        text = raw.rstrip(b"\x00").decode("utf-8", errors="replace")
        key, sep, value = text.partition(":")
        if sep and key.isidentifier():
            texts.setdefault(key.lower(), value)
    return texts
