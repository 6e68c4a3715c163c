"""Saved epochs are offered only when their safetensors file is whole."""

from __future__ import annotations

import struct

import pytest

from pistachio_tui.training.checkpoints import ADAPTER_FILE, SafetensorsProblem, check_safetensors, scan_checkpoints
from pistachio_tui.training.synth import tiny_safetensors


def test_valid_file_passes(tmp_path):
    path = tiny_safetensors(tmp_path / "a.safetensors")
    assert check_safetensors(path) == path.stat().st_size


def _header(text: bytes) -> bytes:
    """A safetensors file with this header and four bytes of data."""
    return struct.pack("<Q", len(text)) + text + bytes(4)


@pytest.mark.parametrize("content, message", [
    (b"", "0 bytes"),
    (b"abc", "too short"),
    (struct.pack("<Q", 10_000) + b"{}", "does not fit"),
    (struct.pack("<Q", 4) + b"nope", "not JSON"),
    (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    (_header(b'{"w": {"dtype": "U8", "shape": [4], "data_offsets": ["0", "4"]}}'), "no integer data_offsets"),
    (_header(b'{"w": {"dtype": "U8", "shape": [4], "data_offsets": [NaN, 1e999]}}'), "no integer data_offsets"),
    (_header(b'{"__metadata__": [1, 2]}'), "__metadata__ that is not an object of strings"),
    (_header(b'{"__metadata__": {"format": 1}}'), "__metadata__ that is not an object of strings"),
])
def test_broken_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(SafetensorsProblem, match=message):
        check_safetensors(path)


def test_truncated_tensor_data_is_refused(tmp_path):
    path = tiny_safetensors(tmp_path / "cut.safetensors")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(SafetensorsProblem, match="truncated"):
        check_safetensors(path)


def test_a_folder_at_the_file_name_is_a_problem_not_a_traceback(tmp_path):
    """``open`` of a folder raised IsADirectoryError through ``train best`` and ``train promote``."""
    (tmp_path / "adapter_model.safetensors").mkdir()
    with pytest.raises(SafetensorsProblem, match=r"cannot be read \(Is a directory\)"):
        check_safetensors(tmp_path / "adapter_model.safetensors")


def test_missing_file(tmp_path):
    with pytest.raises(SafetensorsProblem, match="missing"):
        check_safetensors(tmp_path / "none.safetensors")


def test_scan_marks_unusable_saves_and_ignores_tmp(tmp_path):
    tiny_safetensors(tmp_path / "epoch1" / ADAPTER_FILE)
    (tmp_path / "epoch2").mkdir()
    (tmp_path / "epoch2" / ADAPTER_FILE).write_bytes(b"")
    tiny_safetensors(tmp_path / "epoch3" / ADAPTER_FILE)
    (tmp_path / "epoch3" / "tmp").mkdir()
    tiny_safetensors(tmp_path / "step500" / ADAPTER_FILE)
    (tmp_path / "tmp").mkdir()
    for step in (100, 20):
        (tmp_path / f"global_step{step}").mkdir()
    (tmp_path / "latest").write_text("global_step100\n")
    found = scan_checkpoints(tmp_path)
    assert [s.name for s in found.saved] == ["epoch1", "epoch2", "epoch3", "step500"]
    assert found.usable_epochs == [1]
    assert "0 bytes" in found.epoch(2).problem and "tmp/" in found.epoch(3).problem
    assert found.saved[-1].step == 500 and found.saved[-1].ok
    assert found.global_steps == [20, 100] and found.latest == "global_step100" and found.saving


def test_scan_of_missing_folder_is_empty(tmp_path):
    found = scan_checkpoints(tmp_path / "gone")
    assert found.saved == [] and found.global_steps == [] and found.latest is None
