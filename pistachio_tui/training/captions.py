"""Review and fill a dataset's captions before training.

DiffusionPipe pairs ``image.png`` with ``image.txt``; an image without one is
skipped (``skip_empty_caption``), so every image is listed with its caption
and flagged: missing, empty, the same text as another image (the model
cannot tell them apart), or without the trigger word. A trigger word that is
an everyday word ("man", "style") already means something to the base model
and makes a weak token, so that is flagged too.

An external captioner (JoyCaption's batch script, a VLM wrapper...) fills the
missing ones: the command runs once per image with ``{image}`` replaced by
the image's path (appended when the command has no ``{image}``); the caption
is what it prints, or the ``.txt`` it wrote; the trigger word goes first.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pistachio_tui.training.dataset import IMAGE_SUFFIXES, VIDEO_SUFFIXES, caption_with_trigger
from pistachio_tui.training.errors import DatasetProblem

__all__ = ["CaptionEntry", "CaptionReview", "review_captions", "set_caption", "run_captioner", "COMMON_WORDS"]

#: Everyday words a base model already knows: poor trigger tokens.
COMMON_WORDS = frozenset("""
a an the man woman girl boy person people child kid baby lady guy face portrait photo picture image art
style painting drawing sketch anime cartoon realistic dog cat animal bird horse car house city street tree
flower sky sun water sea beach mountain forest red blue green black white yellow pink purple orange brown
gray grey gold silver dark light beautiful cute pretty old young new big small happy sad smile hair eyes
dress shirt hat character hero queen king prince princess robot monster dragon knight
warrior witch wizard cyberpunk fantasy vintage retro modern film cinematic night day summer winter spring
autumn love star moon fire ice stone wood metal glass paper sword gun book music dance game
""".split())


@dataclass
class CaptionEntry:
    name: str
    #: The caption text; None when the ``.txt`` file is missing.
    caption: str | None
    flags: list[str] = field(default_factory=list)


@dataclass
class CaptionReview:
    folder: Path
    trigger: str | None
    entries: list[CaptionEntry]
    #: Why the trigger word is a poor choice, if it is.
    trigger_problem: str | None = None

    @property
    def missing(self) -> list[str]:
        return [e.name for e in self.entries if e.caption is None]

    @property
    def flagged(self) -> list[CaptionEntry]:
        return [e for e in self.entries if e.flags]

    def summary(self) -> str:
        counts: dict[str, int] = defaultdict(int)
        for entry in self.entries:
            for flag in entry.flags:
                counts[flag.split(" (")[0]] += 1
        parts = [f"{len(self.entries)} files"] + [f"{n} {flag}" for flag, n in sorted(counts.items())]
        return ", ".join(parts)


def _media(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetProblem(f"{folder} is not a folder — give the folder holding your images and .txt captions")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)


def _read(path: Path) -> str | None:
    try:
        return path.with_suffix(".txt").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return ""


def review_captions(folder: Path, trigger: str | None = None) -> CaptionReview:
    """Every image/video of ``folder`` with its caption and what is wrong with it."""
    entries = [CaptionEntry(p.name, _read(p)) for p in _media(folder)]
    if not entries:
        raise DatasetProblem(f"{folder} holds no images or videos")
    by_text: dict[str, list[CaptionEntry]] = defaultdict(list)
    for entry in entries:
        if entry.caption is None:
            entry.flags.append("missing caption")
        elif not entry.caption:
            entry.flags.append("empty caption")
        else:
            by_text[entry.caption.lower()].append(entry)
            if trigger and not re.search(rf"(?<!\w){re.escape(trigger)}(?!\w)", entry.caption, re.IGNORECASE):
                entry.flags.append("no trigger word")
    for same in by_text.values():
        if len(same) > 1:
            for entry in same:
                others = ", ".join(e.name for e in same if e is not entry)
                entry.flags.append(f"duplicate caption (same as {others})")
    problem = None
    if trigger and trigger.lower() in COMMON_WORDS:
        problem = (f"'{trigger}' is an everyday word the base model already knows; pick a rare token "
                   "(e.g. 'pstch', 'sks_style') so the LoRA gets a word of its own")
    return CaptionReview(folder, trigger, entries, problem)


def set_caption(folder: Path, name: str, text: str, trigger: str | None = None) -> str:
    """Write ``name``'s caption (the trigger word put first when given); returns what was written."""
    media = folder / name
    if not media.is_file():
        raise DatasetProblem(f"{name} is not in {folder}")
    caption = caption_with_trigger(text, trigger) if trigger else text.strip()
    media.with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
    return caption


def run_captioner(folder: Path, command: str, names: list[str], *, trigger: str | None = None,
                  timeout: float = 600.0,
                  on_progress: Callable[[int, int, str, str | None], None] | None = None) -> dict[str, str]:
    """Caption ``names`` with ``command``; name → caption written, or → "error: ..." when it failed.

    ``on_progress(done, total, name, caption_or_None)`` is called after each image.
    """
    template = shlex.split(command)
    if not template:
        raise DatasetProblem("the captioner command is empty")
    results = {}
    for i, name in enumerate(names, 1):
        media = folder / name
        argv = [a.replace("{image}", str(media)) for a in template]
        if not any("{image}" in a for a in template):
            argv.append(str(media))
        txt = media.with_suffix(".txt")
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            results[name] = f"error: {exc.__class__.__name__}: {exc}"
        else:
            text = _read(media) if txt.exists() else done.stdout.strip()
            if done.returncode != 0 or not text:
                tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
                results[name] = f"error: exit {done.returncode}: {tail}"
            else:
                results[name] = set_caption(folder, name, text, trigger)
        if on_progress is not None:
            value = results[name]
            on_progress(i, len(names), name, None if value.startswith("error: ") else value)
    return results
