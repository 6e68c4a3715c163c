"""What a run folder holds: saved LoRAs (``epochN/``, ``stepN/``) and resume states.

A save in progress (or one cut by a crash) leaves a ``tmp/`` folder, and a
power cut can leave 0-byte files, so every saved model is checked — size and
a readable safetensors header — before it is offered.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SafetensorsProblem", "check_safetensors", "SavedModel", "RunCheckpoints",
           "scan_checkpoints", "ADAPTER_FILE"]

ADAPTER_FILE = "adapter_model.safetensors"
_FULL_MODEL_FILE = "model.safetensors"
#: A header larger than this is not a plausible safetensors file (upstream caps it at 100 MB).
_MAX_HEADER = 100 * 1024 * 1024
_SAVE_DIR = re.compile(r"(epoch|step)(\d+)")
_GLOBAL_STEP = re.compile(r"global_step(\d+)")


class SafetensorsProblem(Exception):
    """The file is missing, empty, or its header does not parse; the message says which."""


def check_safetensors(path: Path) -> int:
    """Return the file size if ``path`` looks like a whole safetensors file.

    Reads only the header: 8-byte little-endian length, then that many bytes of
    JSON; the tensors' byte ranges must fit inside the file.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SafetensorsProblem(f"{path.name} is missing ({exc.strerror})") from None
    if size == 0:
        raise SafetensorsProblem(f"{path.name} is 0 bytes (the save was cut short)")
    if size < 8:
        raise SafetensorsProblem(f"{path.name} is only {size} bytes, too short for a safetensors header")
    try:
        with open(path, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > _MAX_HEADER or 8 + length > size:
                raise SafetensorsProblem(f"{path.name} has a header length of {length} bytes, "
                                         f"which does not fit the {size}-byte file")
            raw = fh.read(length)
    except OSError as exc:  # a folder at that name, no permission, a disk error
        raise SafetensorsProblem(f"{path.name} cannot be read ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise SafetensorsProblem(f"{path.name} has a header that is not JSON (corrupt file)") from None
    if not isinstance(header, dict):
        raise SafetensorsProblem(f"{path.name} has a header that is not a JSON object")
    data_size = size - 8 - length
    for name, info in header.items():
        if name == "__metadata__":
            # The reference loader reads it as a map of strings and refuses the file otherwise.
            if not (isinstance(info, dict) and all(isinstance(v, str) for v in info.values())):
                raise SafetensorsProblem(f"{path.name} has __metadata__ that is not an object of strings "
                                         "(corrupt header)")
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise SafetensorsProblem(f"{path.name}: tensor {name!r} has no integer data_offsets (corrupt header)")
        if not 0 <= offsets[0] <= offsets[1] <= data_size:
            raise SafetensorsProblem(f"{path.name}: tensor {name!r} lies beyond the end of the file (truncated)")
    return size


@dataclass(frozen=True)
class SavedModel:
    """One ``epochN/`` or ``stepN/`` folder. ``problem`` is None when it is usable."""
    name: str
    path: Path
    epoch: int | None
    step: int | None
    size: int
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def weights(self) -> Path:
        full = self.path / _FULL_MODEL_FILE
        return full if full.exists() and not (self.path / ADAPTER_FILE).exists() else self.path / ADAPTER_FILE


@dataclass(frozen=True)
class RunCheckpoints:
    saved: list[SavedModel]
    #: Resume states (``global_stepN/``), oldest first; DeepSpeed never prunes them.
    global_steps: list[int]
    #: What the ``latest`` file names, if any.
    latest: str | None
    #: A ``tmp/`` folder exists: a save is running now or crashed.
    saving: bool

    def epoch(self, number: int) -> SavedModel | None:
        return next((s for s in self.saved if s.epoch == number), None)

    @property
    def usable_epochs(self) -> list[int]:
        return [s.epoch for s in self.saved if s.ok and s.epoch is not None]


class _HeaderCache:
    """Avoids re-reading headers of unchanged files on every poll."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[tuple[int, int], str | None]] = {}

    def problem(self, path: Path) -> tuple[int, str | None]:
        try:
            st = path.stat()
        except OSError:
            return 0, f"{path.name} is missing"
        key = (st.st_size, st.st_mtime_ns)
        hit = self._seen.get(path)
        if hit is not None and hit[0] == key:
            return st.st_size, hit[1]
        try:
            check_safetensors(path)
            problem = None
        except SafetensorsProblem as exc:
            problem = str(exc)
        if len(self._seen) > 4096:
            self._seen.clear()
        self._seen[path] = (key, problem)
        return st.st_size, problem


_CACHE = _HeaderCache()


def scan_checkpoints(run_dir: Path) -> RunCheckpoints:
    """List saved models and resume states in ``run_dir`` (missing folder → empty)."""
    saved: list[SavedModel] = []
    steps: list[int] = []
    saving = False
    try:
        entries = list(run_dir.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        if not entry.is_dir():
            continue
        if entry.name == "tmp":
            saving = True
        elif m := _SAVE_DIR.fullmatch(entry.name):
            saved.append(_saved_model(entry, m.group(1), int(m.group(2))))
            saving = saving or (entry / "tmp").exists()
        elif m := _GLOBAL_STEP.fullmatch(entry.name):
            steps.append(int(m.group(1)))
    saved.sort(key=lambda s: (s.epoch is None, s.epoch or 0, s.step or 0))
    latest_file = run_dir / "latest"
    try:
        latest = latest_file.read_text().strip() or None
    except OSError:
        latest = None
    return RunCheckpoints(saved, sorted(steps), latest, saving)


def _saved_model(folder: Path, kind: str, number: int) -> SavedModel:
    epoch = number if kind == "epoch" else None
    step = number if kind == "step" else None
    weights = folder / ADAPTER_FILE
    if not weights.exists() and (folder / _FULL_MODEL_FILE).exists():
        weights = folder / _FULL_MODEL_FILE
    size, problem = _CACHE.problem(weights)
    if problem is None and (folder / "tmp").exists():
        problem = "a save into this folder has not finished (tmp/ present)"
    return SavedModel(folder.name, folder, epoch, step, size, problem)
