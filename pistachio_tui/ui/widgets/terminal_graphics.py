"""Which pictures the terminal can draw, asked before the app takes the terminal; textual-image loads later.

textual-image finds out when first imported: it asks the terminal whether it
draws Sixel or the kitty graphics protocol, and how many pixels a cell has
(escape sequences answered on stdin). Once Textual reads the keyboard those
answers would arrive as key presses, so the questions must be asked before the
app starts; but importing textual-image then (with Pillow: about 0.3 s and
16 MB) made every start slower, pictures or not. :func:`probe` asks the same
questions in one round trip without loading either, and :func:`picture_class`
imports textual-image when the first picture is drawn, its own questions
skipped.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.widget import Widget

#: A picture widget of textual-image: ``Picture(pil_image, classes=...)``.
Picture = Callable[..., "Widget"]

SIXEL, KITTY, HALF_CELL, TEXT = "sixel", "kitty", "halfcell", "unicode"

#: The kitty graphics protocol's query (a 1×1 image that is never stored), then Primary Device
#: Attributes: every terminal answers that, so its answer ends the wait, and it lists 4 for Sixel.
QUERY = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\" + "\x1b[c"
_KITTY_OK = re.compile(r"\x1b_Gi=31;OK\x1b\\")
_ATTRIBUTES = re.compile(r"\x1b\[\?([\d;]*)c")
#: A terminal that does not answer at all (rare) delays the start by this much, once.
TIMEOUT = 0.3

#: What :func:`probe` found; None until it ran.
_found: str | None = None
_picture_class: Picture | None = None


def probe(timeout: float = TIMEOUT) -> str:
    """Ask the terminal what it draws (call before the app starts); one of SIXEL, KITTY, HALF_CELL, TEXT."""
    global _found
    _found = _ask(timeout)
    if _found != TEXT:
        # The cell size in pixels scales pictures; textual-image keeps the answer for later. Its module
        # for this is small (no Pillow) and asks by ioctl, or by an escape sequence when that fails.
        from textual_image._terminal import get_cell_size

        # A terminal slow to answer (SSH) makes it log a warning with a traceback, which Python's
        # last-resort handler prints on stderr; its fallback size is fine, so it stays quiet.
        logging.getLogger("textual_image").addHandler(logging.NullHandler())
        get_cell_size()
    return _found


def _ask(timeout: float) -> str:
    stdin, stdout = sys.__stdin__, sys.__stdout__
    if stdout is None or not stdout.isatty():
        return TEXT
    if stdin is None or not stdin.isatty() or os.name != "posix":
        return HALF_CELL
    import select
    import termios
    import tty

    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    answer = ""
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        stdout.write(QUERY)
        stdout.flush()
        deadline = time.monotonic() + timeout
        while _ATTRIBUTES.search(answer) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
            answer += os.read(fd, 1024).decode(errors="replace")
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
    attributes = _ATTRIBUTES.search(answer)
    # Sixel first when both are there, as textual-image chooses.
    if attributes is not None and "4" in attributes.group(1).split(";"):
        return SIXEL
    return KITTY if _KITTY_OK.search(answer) else HALF_CELL


def picture_class() -> Picture:
    """textual-image's widget for what :func:`probe` found (imported on the first call)."""
    global _picture_class
    if _picture_class is None:
        real = sys.__stdout__
        # Imported while stdout is a terminal, textual-image would ask its questions now, with Textual
        # reading the answers as key presses: it is shown a stdout that is no terminal instead.
        setattr(sys, "__stdout__", io.StringIO())
        try:
            from textual_image import widget
        finally:
            setattr(sys, "__stdout__", real)
        found = _found or (HALF_CELL if real is not None and real.isatty() else TEXT)
        classes: dict[str, Picture] = {SIXEL: widget.SixelImage, KITTY: widget.TGPImage,
                                       HALF_CELL: widget.HalfcellImage, TEXT: widget.UnicodeImage}
        _picture_class = classes[found]
    return _picture_class
