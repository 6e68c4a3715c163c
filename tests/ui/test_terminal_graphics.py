"""What pictures the terminal draws is asked before the app starts, in one round trip, in a real pseudo-terminal.

A child process runs the probe with a pty as its terminal; the test plays the
terminal: it reads the questions and answers as kitty, a Sixel terminal, a
plain one, or not at all. The child then loads textual-image for its first
picture, which must not ask the terminal anything more (Textual would read the
answers as key presses).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pistachio_tui.ui.widgets import terminal_graphics

ROOT = Path(__file__).resolve().parent.parent.parent

CHILD = """
import json, sys
from pistachio_tui.ui.widgets import terminal_graphics
found = terminal_graphics.probe()
loaded_before = "textual_image.widget" in sys.modules or "PIL" in sys.modules
sys.stdout.write("\\x1b]probe-done\\x07")
sys.stdout.flush()
picture = terminal_graphics.picture_class()
from textual_image import widget
name = next(n for n in ("SixelImage", "TGPImage", "HalfcellImage", "UnicodeImage") if getattr(widget, n) is picture)
print(json.dumps({"found": found, "loaded_before": loaded_before, "picture": name}), file=sys.stderr)
"""


def read_until(fd: int, marker: bytes, timeout: float = 10.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} from the child, only {seen!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
    return seen


def run_in_terminal(answer: bytes | None) -> tuple[dict, bytes, bytes]:
    """The child's result, what it asked before, and what it wrote to the terminal after the probe."""
    import fcntl
    import pty
    import struct
    import termios

    terminal, child_side = pty.openpty()
    # 24×80 cells of 10×20 pixels, as a terminal window reports them.
    fcntl.ioctl(child_side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 800, 480))
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=child_side, stdout=child_side,
                            stderr=subprocess.PIPE, cwd=ROOT, text=True)
    os.close(child_side)
    try:
        asked = read_until(terminal, b"\x1b[c")
        if answer is not None:
            os.write(terminal, answer)
        after = read_until(terminal, b"probe-done\x07")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        while select.select([terminal], [], [], 0.1)[0]:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:
                break
            if not chunk:
                break
            after += chunk
    finally:
        proc.kill()
        os.close(terminal)
    return json.loads(err.strip().splitlines()[-1]), asked, after.split(b"probe-done\x07", 1)[1]


@pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals are POSIX")
@pytest.mark.parametrize(("answer", "found", "picture"), [
    (b"\x1b_Gi=31;OK\x1b\\\x1b[?62;22c", terminal_graphics.KITTY, "TGPImage"),
    (b"\x1b[?62;4;22c", terminal_graphics.SIXEL, "SixelImage"),
    (b"\x1b[?62;22c", terminal_graphics.HALF_CELL, "HalfcellImage"),
    (None, terminal_graphics.HALF_CELL, "HalfcellImage"),
], ids=["kitty", "sixel", "plain", "silent"])
def test_the_probe_reads_one_answer_and_textual_image_asks_nothing_later(answer, found, picture):
    result, asked, after = run_in_terminal(answer)
    assert asked.endswith(terminal_graphics.QUERY.encode())
    assert result == {"found": found, "loaded_before": False, "picture": picture}
    # Loading textual-image for the first picture wrote no question to the terminal.
    assert b"\x1b[c" not in after and b"\x1b_G" not in after and b"\x1b[16t" not in after


def test_without_a_terminal_nothing_is_asked_and_pictures_are_text():
    out = subprocess.run([sys.executable, "-c", CHILD], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stderr.strip().splitlines()[-1]) == {
        "found": terminal_graphics.TEXT, "loaded_before": False, "picture": "UnicodeImage"}
    assert out.stdout == "\x1b]probe-done\x07"
