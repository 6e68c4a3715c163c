"""Copy a chosen checkpoint's LoRA into a local ComfyUI under a readable name.

``<comfy>/models/loras/<trigger>-<run title>-<checkpoint>.safetensors`` (see
:func:`lora_name`): written to a fresh private temporary name in the same folder
(created with ``O_EXCL``, so a planted symlink cannot redirect it), checked (size
and SHA-256 against the source), then renamed into place, so ComfyUI never lists
a half-copied file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import toml

from pistachio_tui import format as fmt
from pistachio_tui.config import is_comfy_folder
from pistachio_tui.safefiles import temp_beside
from pistachio_tui.training.checkpoints import ADAPTER_FILE, SafetensorsProblem, check_safetensors
from pistachio_tui.training.dataset import PREP_METADATA
from pistachio_tui.training.errors import CheckpointUnusable, PromoteRefused
from pistachio_tui.training.runs import RUN_NAME

__all__ = ["Promoted", "promote", "promote_remote", "RemoteComfy", "lora_name", "run_title", "find_trigger",
           "checkpoint_name", "training_folder"]

_CHUNK = 1024 * 1024
_CHECKPOINT = re.compile(r"(epoch|step)\d+")


@dataclass(frozen=True)
class Promoted:
    path: Path
    size: int
    sha256: str
    #: The dataset's trigger word if the run records one, else None.
    trigger: str | None
    replaced: bool


def checkpoint_name(checkpoint: str | int) -> str:
    """``7`` → ``epoch7``; ``epoch7``/``step15`` as given. Raises ValueError otherwise."""
    name = f"epoch{checkpoint}" if isinstance(checkpoint, int) else str(checkpoint).strip().rstrip("/")
    if not _CHECKPOINT.fullmatch(name):
        raise ValueError(f"{checkpoint!r} is not a checkpoint name — use a save folder's name such as "
                         "epoch7 or step15")
    return name


def _safe(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("._-")


def run_title(run_dir: Path) -> str:
    """A name a person recognises: the prepare folder (``<title>/runs/<stamp>``) or the output
    folder, with the run's start date; the run folder's own name when neither says more."""
    stamp = run_dir.name
    parent = run_dir.parent
    title = parent.parent.name if parent.name == "runs" else parent.name
    if not RUN_NAME.fullmatch(stamp) or not _safe(title):
        return stamp
    return f"{_safe(title)}_{stamp[:8]}-{stamp[9:11]}{stamp[12:14]}"


def lora_name(run_name: str, checkpoint: str | int, trigger: str | None = None) -> str:
    """``<trigger>-<run name>-<checkpoint>.safetensors``, filesystem-safe; the trigger word
    is left out when unknown or already part of the run name."""
    stem = _safe(run_name) or "lora"
    if trigger and _safe(trigger) and _safe(trigger).lower() not in stem.lower():
        stem = f"{_safe(trigger)}-{stem}"
    return f"{stem}-{checkpoint_name(checkpoint)}.safetensors"


def promote(run_dir: Path, checkpoint: str | int, comfy_dir: Path, *, name: str | None = None,
            overwrite: bool = False) -> Promoted:
    """Copy ``run_dir/<checkpoint>/adapter_model.safetensors`` into ``comfy_dir/models/loras``.

    ``checkpoint`` is a save folder's name (``epoch7``, ``step15``) or an epoch
    number. ``name`` replaces the run's title in the file name. Raises
    :class:`CheckpointUnusable` for a missing, empty or broken source and
    :class:`PromoteRefused` when the target exists (unless ``overwrite``), the
    ComfyUI folder is wrong, or the copy does not verify.
    """
    try:
        folder = checkpoint_name(checkpoint)
    except ValueError as exc:
        raise CheckpointUnusable(str(exc)) from None
    source = run_dir / folder / ADAPTER_FILE
    try:
        size = check_safetensors(source)
    except SafetensorsProblem as exc:
        saved = sorted(p.name for p in run_dir.iterdir() if p.is_dir() and _CHECKPOINT.fullmatch(p.name))
        raise CheckpointUnusable(f"Cannot promote {folder} of {run_dir.name}: {exc}. Pick another save"
                                 + (f" ({', '.join(saved[-6:])})" if saved else "") + ".") from None
    if not is_comfy_folder(comfy_dir):
        raise PromoteRefused(f"{comfy_dir} does not look like a ComfyUI folder (no models/ inside) — "
                             "give the folder that contains main.py and models/")
    loras = comfy_dir / "models" / "loras"
    loras.mkdir(exist_ok=True)
    trigger = find_trigger(run_dir)
    target = loras / lora_name(name or run_title(run_dir), folder, trigger)
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
            raise PromoteRefused(f"The disk holding {loras} is full — free {fmt.size(size)} or more "
                                 "and try again; nothing was replaced") from None
        raise PromoteRefused(f"Cannot write into {loras}: {exc.strerror or exc}") from None
    return Promoted(target, size, digest, trigger, existed)


@dataclass(frozen=True)
class RemoteComfy:
    """A ComfyUI folder on another machine reached over SSH (a RunPod pod's
    ``root@<ip> -p <port>``): ``user@host:/workspace/ComfyUI``."""
    host: str
    path: str
    port: int | None = None
    identity: Path | None = None

    @classmethod
    def parse(cls, target: str, port: int | None = None, identity: Path | None = None) -> RemoteComfy:
        host, sep, path = target.partition(":")
        if not sep or not host or not path.startswith("/"):
            raise PromoteRefused(f"{target!r} is not user@host:/absolute/path/to/ComfyUI")
        return cls(host, path.rstrip("/"), port, identity)

    def _ssh_options(self, port_flag: str) -> list[str]:
        options = ["-o", "BatchMode=yes"]
        if self.port:
            options += [port_flag, str(self.port)]
        if self.identity:
            options += ["-i", str(self.identity)]
        return options

    @staticmethod
    def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PromoteRefused(f"{argv[0]} did not finish within {timeout:.0f} s — is the pod reachable?") from None
        except OSError as exc:
            raise PromoteRefused(f"cannot run {argv[0]}: {exc.strerror} — install the OpenSSH client") from None

    def ssh(self, command: str, timeout: float = 60) -> str:
        done = self._run(["ssh", *self._ssh_options("-p"), self.host, command], timeout)
        if done.returncode != 0:
            raise PromoteRefused(f"ssh {self.host} failed ({done.returncode}): "
                                 f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
        return done.stdout

    def upload(self, source: Path, remote: str, timeout: float = 3600) -> None:
        done = self._run(["scp", "-q", *self._ssh_options("-P"), str(source), f"{self.host}:{remote}"], timeout)
        if done.returncode != 0:
            raise PromoteRefused(f"scp to {self.host} failed ({done.returncode}): "
                                 f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")


def promote_remote(run_dir: Path, checkpoint: str | int, remote: RemoteComfy, *, name: str | None = None,
                   overwrite: bool = False) -> Promoted:
    """Like :func:`promote`, into ``<remote>/models/loras`` over SSH: uploaded to a hidden
    temporary name, its SHA-256 checked on the far side, then renamed into place."""
    folder = checkpoint_name(checkpoint)
    source = run_dir / folder / ADAPTER_FILE
    try:
        size = check_safetensors(source)
    except SafetensorsProblem as exc:
        raise CheckpointUnusable(f"Cannot promote {folder} of {run_dir.name}: {exc}.") from None
    trigger = find_trigger(run_dir)
    file_name = lora_name(name or run_title(run_dir), folder, trigger)
    loras = f"{remote.path}/models/loras"
    target, tmp = f"{loras}/{file_name}", f"{loras}/.{file_name}.partial"
    state = remote.ssh(f"test -d {shlex.quote(remote.path + '/models')} || echo nocomfy; "
                       f"test -e {shlex.quote(target)} && echo exists; mkdir -p {shlex.quote(loras)}")
    if "nocomfy" in state:
        raise PromoteRefused(f"{remote.host}:{remote.path} has no models/ folder — give the ComfyUI folder")
    existed = "exists" in state
    if existed and not overwrite:
        raise PromoteRefused(f"{remote.host}:{target} already exists — allow overwriting (--overwrite) to replace it")
    digest = _sha256(source)
    remote.upload(source, tmp)
    far = remote.ssh(f"sha256sum {shlex.quote(tmp)}").split()
    if not far or far[0] != digest:
        remote.ssh(f"rm -f {shlex.quote(tmp)}")
        raise PromoteRefused(f"the copy on {remote.host} did not verify (SHA-256 differs) — check its free space")
    remote.ssh(f"mv -f {shlex.quote(tmp)} {shlex.quote(target)}")
    return Promoted(Path(target), size, digest, trigger, existed)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _dataset_dirs(run_dir: Path) -> list[Path]:
    """The ``[[directory]]`` paths of the dataset TOMLs copied into the run folder."""
    found = []
    for candidate in sorted(run_dir.glob("*.toml")):
        try:
            data = toml.load(candidate)
        except (OSError, toml.TomlDecodeError):
            continue
        entries = data.get("directory")
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("path"):
                found.append(Path(str(entry["path"])))
    return found


def training_folder(run_dir: Path) -> Path | None:
    """The run's first training image folder that still exists."""
    return next((d for d in _dataset_dirs(run_dir) if d.is_dir()), None)


def find_trigger(run_dir: Path) -> str | None:
    """The trigger word recorded by ``prepare`` for the run's dataset, if any.

    Looks at the dataset TOML copied into the run folder, then at the
    preparation metadata next to each dataset directory it names.
    """
    for folder in _dataset_dirs(run_dir):
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
