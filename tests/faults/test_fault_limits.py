"""Memory bombs and values no server can take: each refused with the limit it hit, in bounded memory."""

from __future__ import annotations

import io
import json
import re
import struct
import tracemalloc
import zipfile
import zlib

import pytest

from pistachio_tui.workflow.load import WorkflowError, load_workflow, load_workflows
from tests.workflow.helpers import tiny_ui


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _png(*chunks: bytes) -> bytes:
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + b"".join(chunks) + _chunk(b"IEND", b"")


def test_png_with_many_compressed_text_chunks_loads_in_bounded_memory():
    bomb = zlib.compress(b"\0" * (60 << 20), 9)  # 60 KB that inflate to 60 MB
    junk = [_chunk(b"zTXt", f"junk{i}".encode() + b"\0\0" + bomb) for i in range(12)]
    workflow = _chunk(b"tEXt", b"workflow\0" + json.dumps(tiny_ui()).encode())
    data = _png(*junk, workflow)
    assert len(data) < 2 << 20
    tracemalloc.start()
    try:
        loaded = load_workflow(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded.format == "ui"
    # Before: every chunk was inflated and kept (720 MB here; 3.3 GB for the file).
    assert peak < 64 << 20, f"peak {peak >> 20} MB"


def test_png_whose_wanted_texts_inflate_past_the_total_says_which_limit():
    bomb = zlib.compress(b" " * (60 << 20), 9)
    data = _png(_chunk(b"zTXt", b"workflow\0\0" + bomb), _chunk(b"zTXt", b"prompt\0\0" + bomb))
    with pytest.raises(WorkflowError, match="in total"):
        load_workflow(data)


def test_zip_whose_members_inflate_past_the_total_says_which_limit():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(4):
            archive.writestr(f"m{i}.png", b"\0" * (30 << 20))
    assert len(buf.getvalue()) < 1 << 20
    with pytest.raises(WorkflowError, match="in total") as info:
        load_workflows(buf.getvalue())
    assert "limit for one archive" in str(info.value)


@pytest.mark.parametrize("text", [
    '{"1": {"class_type": "KSampler", "inputs": {"seed": NaN}}}',
    '{"1": {"class_type": "KSampler", "inputs": {"cfg": 1e999}}}',
    '{"1": {"class_type": "KSampler", "inputs": {"cfg": -Infinity}}}',
])
def test_non_finite_numbers_are_refused_at_load(text):
    with pytest.raises(WorkflowError, match="finite number"):
        load_workflow(text.encode())


@pytest.mark.parametrize(("meta", "found"), [("x", "the string 'x'"), (["x"], "an array"), (None, "null"),
                                             (5, "the number 5")])
def test_meta_that_is_not_an_object_is_refused(meta, found, tmp_path, capsys):
    """``_meta`` was read with ``.get("title")`` wherever a node's title is shown (an
    AttributeError traceback); now the loader refuses it, naming what it found (not "NoneType")."""
    from pistachio_tui.cli import exit_codes, main

    text = json.dumps({"1": {"class_type": "KSampler", "inputs": {}, "_meta": meta}})
    with pytest.raises(WorkflowError, match=rf'\$\["1"\]\._meta: found {re.escape(found)} \(expected an object'):
        load_workflow(text.encode())
    path = tmp_path / "meta.json"
    path.write_text(text)
    for argv in (["workflow", "inspect", str(path)], ["run", str(path), "--server", "http://127.0.0.1:9"]):
        assert main(argv) == exit_codes.REJECTED
        err = capsys.readouterr().err
        assert "._meta: found" in err and "Traceback" not in err
