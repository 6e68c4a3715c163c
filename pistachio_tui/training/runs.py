"""Find a DiffusionPipe run from whatever the user points at.

A target can be a run folder (``output_dir/YYYYMMDD_HH-MM-SS``), an output
folder (its newest run is taken, as the trainer itself does on resume), or a
log file the user ``tee``'d the console into.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import toml

from pistachio_tui.training.errors import RunNotFound

__all__ = ["RunPaths", "resolve_run", "find_log", "RUN_NAME", "read_run_config", "RunConfig"]

#: DiffusionPipe names each run folder by its UTC start time.
RUN_NAME = re.compile(r"\d{8}_\d{2}-\d{2}-\d{2}")
_LOG_SUFFIXES = (".log", ".txt", ".out")


@dataclass(frozen=True)
class RunPaths:
    """Where a run's data lives; either part may be unknown (None)."""
    run_dir: Path | None
    log_path: Path | None

    @property
    def name(self) -> str:
        if self.run_dir is not None:
            return self.run_dir.name
        assert self.log_path is not None
        return self.log_path.stem


def _looks_like_run(folder: Path) -> bool:
    if RUN_NAME.fullmatch(folder.name):
        return True
    return any(folder.glob("events.out.tfevents.*")) or any(folder.glob("epoch[0-9]*"))


def _runs_in(output_dir: Path) -> list[Path]:
    return sorted(p for p in output_dir.iterdir() if p.is_dir() and RUN_NAME.fullmatch(p.name))


def _newest_log(folder: Path) -> Path | None:
    logs = [p for p in folder.iterdir() if p.is_file() and p.suffix in _LOG_SUFFIXES
            and p.name != "latest"]
    return max(logs, key=lambda p: p.stat().st_mtime, default=None)


def resolve_run(target: Path | str, log: Path | str | None = None) -> RunPaths:
    """Work out the run folder and log file for ``target``.

    ``log`` names the console log explicitly; otherwise the newest ``*.log``
    (``.txt``/``.out``) in the run folder is used, or in the output folder when
    the run is that folder's newest one. Raises :class:`RunNotFound`.
    """
    path = Path(target).expanduser()
    log_path = Path(log).expanduser() if log is not None else None
    if path.is_file():
        parent = path.parent
        return RunPaths(parent if _looks_like_run(parent) else None, path)
    if not path.is_dir():
        raise RunNotFound(f"{path} does not exist — give a run folder, an output folder or a log file")
    run_dir = path
    if not _looks_like_run(path):
        runs = _runs_in(path)
        if not runs:
            if log_path is None and (found := _newest_log(path)) is not None:
                return RunPaths(None, found)
            raise RunNotFound(f"{path} holds no DiffusionPipe run (no YYYYMMDD_HH-MM-SS folder, "
                              "no event files, no epochN/) and no log file")
        run_dir = runs[-1]
    return RunPaths(run_dir, log_path or find_log(run_dir))


def find_log(run_dir: Path) -> Path | None:
    """The newest console log in ``run_dir``, else in its output folder if this is its newest run."""
    try:
        found = _newest_log(run_dir)
        parent = run_dir.parent
        if found is None and _runs_in(parent)[-1:] == [run_dir]:
            found = _newest_log(parent)
    except OSError:
        return None
    return found


@dataclass(frozen=True)
class RunConfig:
    """The parts of the run's copied main TOML that watching needs."""
    epochs: int | None
    max_steps: int | None
    eval_names: list[str]
    raw: dict[str, Any]
    path: Path | None


def read_run_config(run_dir: Path | None) -> RunConfig:
    """Read the main TOML the trainer copied into the run folder (empty if none)."""
    if run_dir is not None:
        for candidate in sorted(run_dir.glob("*.toml")):
            try:
                data = toml.load(candidate)
            except (OSError, toml.TomlDecodeError):
                continue
            if "model" in data or "epochs" in data:
                return RunConfig(_int(data.get("epochs")), _int(data.get("max_steps")),
                                 _eval_names(data.get("eval_datasets", [])), data, candidate)
    return RunConfig(None, None, [], {}, None)


def _eval_names(entries: Any) -> list[str]:
    names = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        names.append(entry.get("name", f"eval{i}") if isinstance(entry, dict) else f"eval{i}")
    return names


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
