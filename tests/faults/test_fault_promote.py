"""``train promote`` under planted symlinks and a full disk: nothing is written outside
``models/loras``, the LoRA never becomes a symlink, and a full disk is a message, not a traceback."""

from __future__ import annotations

import errno
import shutil

import pytest

from pistachio_tui.training.errors import PromoteRefused
from pistachio_tui.training.promote import find_trigger, lora_name, promote, run_title
from tests.training.helpers import make_comfy, make_run


@pytest.fixture
def setup(tmp_path):
    run = make_run(tmp_path)
    comfy = make_comfy(tmp_path)
    loras = comfy / "models" / "loras"
    loras.mkdir(exist_ok=True)
    return run.run_dir, comfy, loras / lora_name(run_title(run.run_dir), 17, find_trigger(run.run_dir))


def test_a_symlink_planted_at_the_old_temporary_name_is_not_followed(setup, tmp_path):
    run_dir, comfy, target = setup
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"precious")
    (target.parent / f".{target.name}.partial").symlink_to(outside)
    result = promote(run_dir, 17, comfy)
    assert outside.read_bytes() == b"precious"
    assert result.path == target and target.is_file() and not target.is_symlink()


def test_a_symlink_at_the_final_name_is_refused(setup, tmp_path):
    run_dir, comfy, target = setup
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"precious")
    target.symlink_to(outside)
    with pytest.raises(PromoteRefused, match="symlink"):
        promote(run_dir, 17, comfy, overwrite=True)
    assert outside.read_bytes() == b"precious"


def test_a_full_disk_is_a_clear_refusal_and_leaves_nothing(setup, monkeypatch):
    run_dir, comfy, target = setup

    def full(src, dst, length=0):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)
    with pytest.raises(PromoteRefused, match="disk holding .* is full"):
        promote(run_dir, 17, comfy)
    assert list(target.parent.iterdir()) == []


def test_a_write_the_system_refuses_mid_file_is_one_line_from_the_command(setup):
    """Not a patched copy: the real ``pistachio train promote`` in a process whose files may not
    grow past 10 KiB (RLIMIT_FSIZE, a disk that fills up without needing root), copying a
    100 KB LoRA. One line, exit 2, no traceback, nothing left in models/loras."""
    import json
    import os
    import resource
    import struct
    import subprocess
    import sys

    run_dir, comfy, target = setup
    size = 100_000
    header = json.dumps({"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}).encode()
    (run_dir / "epoch17" / "adapter_model.safetensors").write_bytes(
        struct.pack("<Q", len(header)) + header + bytes(size))

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (10 * 1024, 10 * 1024))

    done = subprocess.run(
        [sys.executable, "-m", "pistachio_tui", "train", "promote", str(run_dir), "--epoch", "17",
         "--comfy", str(comfy)],
        capture_output=True, text=True, timeout=60, preexec_fn=small_files,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "File too large" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert list(target.parent.iterdir()) == []
