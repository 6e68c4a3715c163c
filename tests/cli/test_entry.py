"""The ``pistachio`` entry point as a process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_terminal_that_does_not_answer_the_image_probe_shows_no_traceback():
    """textual-image asks the terminal for its cell size on import and, without an answer
    within 0.1 s (a slow SSH link), logged a warning with a traceback onto the screen before
    the app drew itself. ``run_app`` is run in a pseudo-terminal that never answers."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    script = ("import sys, pistachio_tui.ui.app as app\n"
              "class Quiet:\n"
              "    def __init__(self, *a, **k): pass\n"
              "    def run(self): print('app would run')\n"
              "app.PistachioApp = Quiet\n"
              "from pistachio_tui.config import Settings\n"
              "sys.exit(app.run_app(Settings()))\n")
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the pseudo-terminal
        # 40 rows, 120 columns and no pixel size, as many terminals report over SSH: the
        # probe then asks the terminal with an escape sequence.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-c", script])
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert b"app would run" in out
    assert b"Traceback" not in out and b"Failed to get cell size" not in out, out


DEAD = "http://127.0.0.1:9"


@pytest.mark.parametrize("argv", [
    ["status", "--server", ":99999", "--json"],
    ["workflow", "inspect", "missing.json", "--json"],
    ["workflow", "inspect", "WF", "--server", DEAD, "--json"],
    ["fix", "missing.json", "--server", DEAD, "--json"],
    ["models", "list", "--server", DEAD, "--json"],
    ["train", "best", "missing-run", "--json"],
    ["batch", "missing.json", "--server", DEAD, "--json"],
    ["batch", "WF", "--server", DEAD, "-o", "OUT", "--json"],
], ids=lambda argv: " ".join(argv[:2]))
def test_a_failing_json_command_prints_a_json_error_object(argv, tmp_path, capsys, monkeypatch):
    """With ``--json`` a script reads stdout; these printed nothing there when they failed (only
    ``pods`` and the ComfyUI commands had their own error object)."""
    from tests.workflow.helpers import tiny_ui

    monkeypatch.chdir(tmp_path)
    (tmp_path / "wf.json").write_text(json.dumps(tiny_ui()))
    argv = ["wf.json" if a == "WF" else str(tmp_path / "out") if a == "OUT" else a for a in argv]
    code = main(argv)
    captured = capsys.readouterr()
    assert code not in (exit_codes.OK, exit_codes.INTERNAL)
    body = json.loads(captured.out)
    assert body["exit_code"] == code
    assert body["error"] and not body["error"].startswith("error:")
    assert body["error"] in captured.err


def test_a_json_command_that_prints_its_own_failure_gets_no_second_object(capsys):
    assert main(["status", "--server", DEAD, "--json"]) == exit_codes.UNREACHABLE
    assert json.loads(capsys.readouterr().out)["status"] == "unreachable"
