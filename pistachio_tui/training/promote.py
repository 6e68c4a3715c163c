"""Copy a chosen epoch's LoRA into a local ComfyUI under a clear name.

``<comfy>/models/loras/<run-name>_e<N>.safetensors``: written to a fresh
private temporary name in the same folder (created with ``O_EXCL``, so a
planted symlink cannot redirect it), checked (size and SHA-256 against the
source), then renamed into place, so ComfyUI never lists a half-copied file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import toml

from pistachio_tui.safefiles import temp_beside
from pistachio_tui.training.checkpoints import ADAPTER_FILE, SafetensorsProblem, check_safetensors
from pistachio_tui.training.dataset import PREP_METADATA
from pistachio_tui.training.errors import CheckpointUnusable, PromoteRefused

__all__ = ["Promoted", "promote", "lora_name", "find_trigger"]

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Promoted:
    path: Path
    size: int
    sha256: str
    #: The dataset's trigger word if the run records one, else None.
    trigger: str | None
    replaced: bool


def lora_name(run_name: str, epoch: int) -> str:
    """File name for ComfyUI: the run name made filesystem-safe, plus ``_e<N>``."""
    safe = re.sub(r"[^\w.-]+", "_", run_name).strip("._") or "lora"
    return f"{safe}_e{epoch}.safetensors"


def promote(run_dir: Path, epoch: int, comfy_dir: Path, *, name: str | None = None,
            overwrite: bool = False) -> Promoted:
    """Copy ``run_dir/epoch<epoch>/adapter_model.safetensors`` into ``comfy_dir/models/loras``.

    ``name`` replaces the run folder's name in the file name. Raises
    :class:`CheckpointUnusable` for a missing, empty or broken source and
    :class:`PromoteRefused` when the target exists (unless ``overwrite``), the
    ComfyUI folder is wrong, or the copy does not verify.
    """
    source = run_dir / f"epoch{epoch}" / ADAPTER_FILE
    try:
        size = check_safetensors(source)
    except SafetensorsProblem as exc:
        raise CheckpointUnusable(f"Cannot promote epoch {epoch} of {run_dir.name}: {exc}. "
                                 "Pick another saved epoch.") from None
    if not (comfy_dir / "models").is_dir():
        raise PromoteRefused(f"{comfy_dir} does not look like a ComfyUI folder (no models/ inside) — "
                             "give the folder that contains main.py and models/")
    loras = comfy_dir / "models" / "loras"
    loras.mkdir(exist_ok=True)
    target = loras / lora_name(name or run_dir.name, epoch)
    existed = target.exists()
    if existed and not overwrite:
        raise PromoteRefused(f"{target} already exists — allow overwriting (--overwrite) to replace it, or choose another name")
    if target.is_symlink() or loras.is_symlink():
        raise PromoteRefused(f"{target if target.is_symlink() else loras} is a symlink — refusing to write "
                             "through it; remove it or choose another ComfyUI folder")
    digest = _sha256(source)
    try:
        # A fresh private name (O_EXCL): a file or symlink planted at a guessable temporary
        # name can neither receive the copy nor be renamed into place.
        with temp_beside(target) as (dst, tmp), open(source, "rb") as src:
            shutil.copyfileobj(src, dst, _CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
            copied_size = tmp.stat().st_size
            if copied_size != size or _sha256(tmp) != digest:
                raise PromoteRefused(f"The copy of {source.name} did not verify (size or SHA-256 differ) — "
                                     "check free disk space and try again")
            os.replace(tmp, target)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise PromoteRefused(f"The disk holding {loras} is full — free {size / 1024**2:.0f} MB or more "
                                 "and try again; nothing was replaced") from None
        raise PromoteRefused(f"Cannot write into {loras}: {exc.strerror or exc}") from None
    return Promoted(target, size, digest, find_trigger(run_dir), existed)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def find_trigger(run_dir: Path) -> str | None:
    """The trigger word recorded by ``prepare`` for the run's dataset, if any.

    Looks at the dataset TOML copied into the run folder, then at the
    preparation metadata next to each dataset directory it names.
    """
    for candidate in sorted(run_dir.glob("*.toml")):
        try:
            data = toml.load(candidate)
        except (OSError, toml.TomlDecodeError):
            continue
        for entry in data.get("directory", []) if isinstance(data.get("directory"), list) else []:
            folder = Path(str(entry.get("path", ""))) if isinstance(entry, dict) else None
            if folder is None:
                continue
            for meta in (folder / PREP_METADATA, folder.parent / PREP_METADATA):
                trigger = _trigger_from(meta)
                if trigger:
                    return trigger
    return None


def _trigger_from(meta: Path) -> str | None:
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    trigger = data.get("trigger") if isinstance(data, dict) else None
    return trigger if isinstance(trigger, str) and trigger else None
