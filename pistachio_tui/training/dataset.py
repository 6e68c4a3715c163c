"""Dataset folders for LoRA training: inspect, caption with a trigger word, split.

DiffusionPipe reads a folder of images/videos, each with a same-named ``.txt``
caption; images without a caption are skipped (``skip_empty_caption``
defaults to true), which silently shrinks a dataset — so missing and empty
captions are reported up front.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pistachio_tui.training.errors import DatasetProblem
from pistachio_tui.training.media import MediaUnreadable, image_size, video_info

__all__ = ["MediaItem", "DatasetReport", "inspect_dataset", "caption_with_trigger",
           "split_names", "PreparedDataset", "build_dataset", "PREP_METADATA",
           "IMAGE_SUFFIXES", "VIDEO_SUFFIXES"]

#: Written by :func:`build_dataset` next to the images; records the trigger word
#: so promoting a LoRA can tell the user which word activates it.
PREP_METADATA = "pistachio_dataset.json"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mov", ".mkv"})


@dataclass(frozen=True)
class MediaItem:
    path: Path
    #: Pixel size from the file header; None when unreadable.
    size: tuple[int, int] | None
    #: Caption text; None when the ``.txt`` file is missing.
    caption: str | None
    problem: str | None = None
    #: A video's length in seconds (None for images, or when it could not be read).
    seconds: float | None = None

    @property
    def is_video(self) -> bool:
        return self.path.suffix.lower() in VIDEO_SUFFIXES


@dataclass
class DatasetReport:
    folder: Path
    items: list[MediaItem]
    warnings: list[str] = field(default_factory=list)

    @property
    def image_count(self) -> int:
        return sum(1 for i in self.items if i.path.suffix.lower() in IMAGE_SUFFIXES)

    @property
    def video_count(self) -> int:
        return sum(1 for i in self.items if i.path.suffix.lower() in VIDEO_SUFFIXES)

    @property
    def missing_captions(self) -> list[str]:
        return [i.path.name for i in self.items if i.caption is None]

    @property
    def empty_captions(self) -> list[str]:
        return [i.path.name for i in self.items if i.caption is not None and not i.caption.strip()]

    @property
    def unreadable(self) -> list[str]:
        return [i.path.name for i in self.items if i.problem]

    @property
    def sizes(self) -> Counter[tuple[int, int]]:
        return Counter(i.size for i in self.items if i.size)

    def summary(self) -> str:
        parts = [f"{self.image_count} images", f"{self.video_count} videos"]
        if self.missing_captions:
            parts.append(f"{len(self.missing_captions)} without caption")
        if self.empty_captions:
            parts.append(f"{len(self.empty_captions)} with empty caption")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable")
        return ", ".join(parts)


def _read_caption(media: Path) -> str | None:
    try:
        return media.with_suffix(".txt").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return ""


def _media_item(path: Path) -> MediaItem:
    """Header-only reads: sizes (and video lengths) without decoding pixels."""
    caption = _read_caption(path)
    try:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return MediaItem(path, image_size(path), caption)
        info = video_info(path)
        return MediaItem(path, (info.width, info.height), caption, seconds=info.seconds)
    except MediaUnreadable as exc:
        problem = str(exc)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        # The trainer may still read it; only its bucket cannot be worked out here.
        return MediaItem(path, None, caption, problem=None, seconds=None)
    return MediaItem(path, None, caption, problem)


def inspect_dataset(folder: Path) -> DatasetReport:
    """Inventory of ``folder`` (not recursive). Raises :class:`DatasetProblem` if unusable."""
    if not folder.is_dir():
        raise DatasetProblem(f"{folder} is not a folder — give the folder holding your images and .txt captions")
    items = []
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if not path.is_file() or suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
            continue
        items.append(_media_item(path))
    report = DatasetReport(folder, items)
    if not items:
        raise DatasetProblem(f"{folder} holds no images or videos ({', '.join(sorted(IMAGE_SUFFIXES))})")
    small = [i.path.name for i in items if i.size and min(i.size) < 256 and not i.is_video]
    if small:
        report.warnings.append(f"{len(small)} images are smaller than 256 px on a side (e.g. {small[0]})")
    if len(items) < 5:
        report.warnings.append(f"only {len(items)} items: too few to hold out an eval set and still train well")
    return report


def caption_with_trigger(caption: str | None, trigger: str) -> str:
    """Put ``trigger`` first, keeping the caption; never add it twice."""
    text = (caption or "").strip()
    if re.match(rf"{re.escape(trigger)}(?:\b|$)", text):
        return text
    return f"{trigger}, {text}" if text else trigger


def split_names(names: list[str], eval_fraction: float = 0.2, seed: str = "pistachio") -> tuple[list[str], list[str]]:
    """Deterministic train/eval split: order by a seeded hash, take the eval share.

    The same names and seed always give the same split, whatever order the
    files were listed in; at least one item goes to each side when there are two or more.
    """
    ranked = sorted(sorted(set(names)), key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())
    count = round(len(ranked) * eval_fraction)
    if len(ranked) >= 2:
        count = min(max(count, 1), len(ranked) - 1)
    else:
        count = 0
    held = set(ranked[:count])
    return [n for n in sorted(ranked) if n not in held], sorted(held)


@dataclass(frozen=True)
class PreparedDataset:
    root: Path
    train_dir: Path
    eval_dir: Path
    train: list[str]
    eval: list[str]
    trigger: str
    report: DatasetReport


def build_dataset(source: Path, out: Path, trigger: str, *, eval_fraction: float = 0.2,
                  seed: str = "pistachio", link: bool = True,
                  report: DatasetReport | None = None) -> PreparedDataset:
    """Write ``out/train`` and ``out/eval``: media (hardlinked, else copied) with captions
    that start with ``trigger``. Items whose caption is missing get the trigger alone,
    so none is skipped by the trainer. The source folder is never modified.
    """
    if not trigger.strip():
        raise DatasetProblem("the trigger word is empty — pass a short, unusual token such as 'pstch'")
    report = report or inspect_dataset(source)
    usable = {i.path.name: i for i in report.items if not i.problem}
    train, held = split_names(list(usable), eval_fraction, seed)
    train_dir, eval_dir = out / "train", out / "eval"
    for folder, names in ((train_dir, train), (eval_dir, held)):
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale(folder, set(names))
        for name in names:
            item = usable[name]
            _place(item.path, folder / name, link)
            (folder / name).with_suffix(".txt").write_text(caption_with_trigger(item.caption, trigger) + "\n",
                                                           encoding="utf-8")
        (folder / PREP_METADATA).write_text(json.dumps(
            {"trigger": trigger, "source": str(source), "split": folder.name, "items": len(names)}, indent=1))
    return PreparedDataset(out, train_dir, eval_dir, train, held, trigger, report)


def _remove_stale(folder: Path, names: set[str]) -> None:
    """A re-run into the same folder must not leave files of an earlier split or an image the
    user has since deleted: the trainer reads every file in the folder. Only media and
    captions are touched; the trainer's ``cache/`` stays (it checks its own fingerprints)."""
    stems = {Path(n).stem for n in names}
    if any(folder.iterdir()) and not (folder / PREP_METADATA).exists():
        raise DatasetProblem(f"{folder} already holds files not written by prepare — choose another output folder")
    for entry in folder.iterdir():
        if not entry.is_file():
            continue
        suffix = entry.suffix.lower()
        stale_media = suffix in IMAGE_SUFFIXES | VIDEO_SUFFIXES and entry.name not in names
        stale_caption = suffix == ".txt" and entry.stem not in stems
        if stale_media or stale_caption:
            entry.unlink()


def _place(src: Path, dst: Path, link: bool) -> None:
    if dst.exists():
        dst.unlink()
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # other filesystem or no hardlink support: copy instead
    shutil.copy2(src, dst)
