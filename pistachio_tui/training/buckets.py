"""DiffusionPipe's size buckets, worked out before any GPU time is paid.

Reproduces upstream ``utils/dataset.py`` (snapshot of 2026-08-20):

- aspect-ratio buckets are ``geomspace(min_ar, max_ar, num_ar_buckets)``
  rounded to 3 decimals, deduplicated and sorted (``[1.0]`` without
  ``enable_ar_bucket``); each file goes to the bucket nearest its width/height
  in log space (the first on a tie);
- frame buckets always include 1 (images); a video goes to the longest frame
  bucket not longer than it, never to 1 — a video shorter than every other
  bucket is dropped; its length in frames is ``int(frames × model fps / file fps)``;
- each (aspect ratio, frames) group is resized to every resolution: width
  ``round(sqrt(res² × ar) / m) × m``, height ``round(res² / sqrt(res² × ar) / m) × m``
  with ``m`` the model's pixel multiple;
- a bucket holds ``int(files × num_repeats)`` items, rounded *down* to a
  multiple of the global batch (micro batch × gradient accumulation ×
  data-parallel GPUs), so small buckets lose items or vanish; buckets of the
  same size from several directories are pooled first;
- an epoch is one pass over the kept batches: steps per epoch = kept ÷ global
  batch. A dataset that keeps nothing stops the trainer with "Processed
  dataset was empty" — after caching and model loading.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["BucketSettings", "Bucket", "BucketPlan", "ar_buckets", "nearest_ar", "frame_bucket",
           "bucket_size", "plan_buckets", "repeats_to_keep_all", "MediaShape"]

_ROUND_DIGITS = 3


@dataclass(frozen=True)
class BucketSettings:
    """The dataset-TOML keys that decide buckets (upstream defaults for missing ones)."""
    resolutions: tuple[int, ...] = (512,)
    enable_ar_bucket: bool = True
    min_ar: float = 0.5
    max_ar: float = 2.0
    num_ar_buckets: int = 7
    frame_buckets: tuple[int, ...] = (1,)
    #: The model's ``pixels_round_to_multiple`` (16 for most, 32 for LTX-Video and Wan 2.2 5B).
    round_to: int = 16
    #: The model's frame rate for videos (Wan: 16).
    framerate: float | None = None


def _dedup_sorted(values: Iterable[float]) -> list[float]:
    return sorted({round(float(v), _ROUND_DIGITS) for v in values})


def ar_buckets(settings: BucketSettings) -> list[float]:
    if not settings.enable_ar_bucket:
        return [1.0]
    return _dedup_sorted(np.geomspace(settings.min_ar, settings.max_ar, num=settings.num_ar_buckets))


def nearest_ar(width: int, height: int, ars: list[float]) -> float:
    log_ars = np.log(np.array(ars))
    return ars[int(np.argmin(np.abs(np.log(width / height) - log_ars)))]


def frame_bucket(frames: int, buckets: tuple[int, ...]) -> int | None:
    """The frame bucket a file of ``frames`` frames goes to (1 for images); None: too short."""
    options = sorted(set(buckets) | {1})
    fitting = [b for b in options if b <= frames]
    if not fitting:
        return None
    chosen = fitting[-1]
    if frames > 1 and chosen == 1:
        return None  # a video never goes to the image bucket
    return chosen


def _round_to(x: float, multiple: int) -> int:
    return int(round(x / multiple) * multiple)


def bucket_size(ar: float, resolution: float, multiple: int) -> tuple[int, int]:
    area = resolution ** 2
    width = math.sqrt(area * ar)
    return _round_to(width, multiple), _round_to(area / width, multiple)


@dataclass(frozen=True)
class Bucket:
    """One size bucket after rounding to the global batch."""
    ar: float
    width: int
    height: int
    frames: int
    files: int
    items: int
    kept: int
    global_batch: int

    @property
    def dropped(self) -> int:
        return self.items - self.kept

    @property
    def batches(self) -> int:
        return self.kept // self.global_batch

    def describe(self) -> str:
        frames = "image" if self.frames == 1 else f"{self.frames} frames"
        files = f"{self.files} file{'s' if self.files != 1 else ''}"
        items = f"{self.items} item{'s' if self.items != 1 else ''}"
        line = (f"{self.width}×{self.height} (ar {self.ar:g}, {frames}): {files} → {items}, "
                f"{self.batches} batch{'es' if self.batches != 1 else ''} of {self.global_batch}")
        if self.dropped:
            line += f", {self.dropped} dropped" + (" (the whole bucket)" if not self.kept else "")
        return line


@dataclass(frozen=True)
class BucketPlan:
    buckets: list[Bucket]
    #: Files the trainer skips before bucketing (videos too short for any frame bucket).
    too_short: list[str]

    @property
    def steps_per_epoch(self) -> int:
        return sum(b.batches for b in self.buckets)

    @property
    def items(self) -> int:
        return sum(b.items for b in self.buckets)

    @property
    def kept(self) -> int:
        return sum(b.kept for b in self.buckets)

    @property
    def dropped(self) -> int:
        return sum(b.dropped for b in self.buckets)

    @property
    def empty(self) -> bool:
        return self.steps_per_epoch == 0


@dataclass(frozen=True)
class MediaShape:
    """What bucketing needs of a file: its size and, for videos, frames at the model's rate."""
    name: str
    width: int
    height: int
    frames: int = 1


def plan_buckets(files: list[MediaShape], settings: BucketSettings, *, num_repeats: float,
                 global_batch: int, image_global_batch: int | None = None) -> BucketPlan:
    """Sort ``files`` into buckets as the trainer will; ``image_global_batch`` applies to the
    image (1-frame) buckets when ``image_micro_batch_size_per_gpu`` differs."""
    ars = ar_buckets(settings)
    groups: dict[tuple[float, int], int] = defaultdict(int)
    too_short = []
    for f in files:
        frames = frame_bucket(f.frames, settings.frame_buckets)
        if frames is None:
            too_short.append(f.name)
            continue
        groups[(nearest_ar(f.width, f.height, ars), frames)] += 1
    buckets = []
    for (ar, frames), count in sorted(groups.items()):
        batch = (image_global_batch or global_batch) if frames == 1 else global_batch
        for res in _dedup_sorted(settings.resolutions):
            width, height = bucket_size(ar, res, settings.round_to)
            items = int(count * num_repeats)
            buckets.append(Bucket(ar, width, height, frames, count, items, items // batch * batch, batch))
    return BucketPlan(buckets, too_short)


def repeats_to_keep_all(counts: Iterable[int], global_batch: int, *, at_least: int = 1) -> int:
    """Smallest whole ``num_repeats`` ≥ ``at_least`` that makes every bucket a multiple of the batch."""
    step = 1
    for n in counts:
        need = global_batch // math.gcd(global_batch, n)
        step = step * need // math.gcd(step, need)
    return math.ceil(at_least / step) * step
