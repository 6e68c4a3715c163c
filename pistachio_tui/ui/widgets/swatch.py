"""A few coloured cells standing for an image on a table row: cheap, and drawn by any colour terminal.

Each cell is an upper half block whose foreground is the top half of a strip of
the image and whose background the bottom half, so ``cells`` cells show a
``cells``×2 average of the picture: enough to tell a sunset from a forest.
"""

from __future__ import annotations

import io

from rich.color import Color
from rich.style import Style
from rich.text import Text

HALF_BLOCK = "▀"


def swatch(data: bytes, cells: int = 3) -> Text | None:
    """The image in ``data`` as ``cells`` coloured cells; None when it is not an image Pillow reads.

    Decoding a full-size picture takes milliseconds: call it off the event loop.
    """
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (cells * 8, 16))  # JPEG decodes at a fraction of its size; others ignore it
            small = image.convert("RGB").resize((cells, 2), Image.Resampling.BOX)
    except Exception:  # noqa: BLE001 — anything undecodable simply has no swatch
        return None
    text = Text()
    raw = small.tobytes()  # RGB triples row by row: the top row, then the bottom one
    pixels = [Color.from_rgb(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]
    for top, bottom in zip(pixels[:cells], pixels[cells:]):
        text.append(HALF_BLOCK, style=Style(color=top, bgcolor=bottom))
    return text
