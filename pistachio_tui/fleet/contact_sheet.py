"""A contact sheet: every image of a batch as a labelled thumbnail grid."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, UnidentifiedImageError

from pistachio_tui.fleet.journal import JobRecord

SHEET_NAME = "contact_sheet.png"


def make_contact_sheet(out_dir: Path, records: list[JobRecord], *, thumb: int = 192,
                       columns: int | None = None) -> Path | None:
    """Write ``contact_sheet.png`` into ``out_dir``; None when the batch has no images.

    Files that are not images (videos, latents) are left out rather than failing
    the sheet, since a batch can mix outputs.
    """
    tiles: list[tuple[Image.Image, str]] = []
    for record in sorted(records, key=lambda r: r.index):
        for name in record.files:
            try:
                with Image.open(out_dir / name) as source:
                    source.thumbnail((thumb, thumb))
                    tiles.append((source.convert("RGB"), _label(record)))
            except (UnidentifiedImageError, OSError):
                continue
    if not tiles:
        return None
    columns = columns or max(1, math.ceil(math.sqrt(len(tiles))))
    rows = math.ceil(len(tiles) / columns)
    label_h = 14
    sheet = Image.new("RGB", (columns * thumb, rows * (thumb + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (img, label) in enumerate(tiles):
        x, y = (i % columns) * thumb, (i // columns) * (thumb + label_h)
        sheet.paste(img, (x + (thumb - img.width) // 2, y + (thumb - img.height) // 2))
        draw.text((x + 2, y + thumb + 1), label, fill="black")
    path = out_dir / SHEET_NAME
    sheet.save(path)
    return path


def _label(record: JobRecord) -> str:
    seed = record.params.get("seed")
    return f"#{record.index}" + (f" seed {seed}" if seed is not None else "")
