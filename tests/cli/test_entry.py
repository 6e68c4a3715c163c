"""The ``pistachio`` entry point as a process."""

import os
import subprocess
import sys
from pathlib import Path

from pistachio_tui.cli import exit_codes, main

ROOT = Path(__file__).parents[2]


def test_closed_pipe_is_not_a_traceback(monkeypatch):
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` having exited
    stdout = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", stdout)
    code = main(["workflow", "inspect", "--object-info", str(ROOT / "tests/fixtures/comfyui-0.8.0/object_info.json"),
                 str(ROOT / "workflows/wan21_t2v.json")])
    assert code == exit_codes.FAILED
    stdout.write("still writable: the fd now points at devnull")
    stdout.close()


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "pistachio_tui", "--help"], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    for command in ("demo", "status", "run", "workflow", "fix", "batch", "pods"):
        assert command in out
