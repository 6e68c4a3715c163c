"""Find a DiffusionPipe run from whatever the user points at.

A target can be a run folder (``output_dir/YYYYMMDD_HH-MM-SS``), an output
folder (its newest run is taken, as the trainer itself does on resume), or a
log file the user ``tee``'d the console into.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import toml

from pistachio_tui.training.errors import RunNotFound

__all__ = ["RunPaths", "resolve_run", "find_log", "RUN_NAME", "read_run_config", "read_main_toml", "RunConfig",
           "runs_in", "prepared_output_dir"]

#: DiffusionPipe names each run folder by its UTC start time.
RUN_NAME = re.compile(r"\d{8}_\d{2}-\d{2}-\d{2}")
_LOG_SUFFIXES = (".log", ".txt", ".out")
_MEDIA_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".mp4", ".webm", ".mov", ".mkv"})


@dataclass(frozen=True)
class RunPaths:
    """Where a run's data lives; any part may be unknown (None).

    ``output_dir`` is where the trainer creates run folders, when the target
    named one: a run that is still caching latents has no folder yet, and a
    watcher waits there for it.
    """
    run_dir: Path | None
    log_path: Path | None
    output_dir: Path | None = None

    @property
    def name(self) -> str:
        if self.run_dir is not None:
            return self.run_dir.name
        if self.log_path is not None:
            return self.log_path.stem
        assert self.output_dir is not None
        # prepare's layout is <title>/runs/: the title says more than "runs".
        return self.output_dir.parent.name if self.output_dir.name == "runs" else self.output_dir.name


def _looks_like_run(folder: Path) -> bool:
    if RUN_NAME.fullmatch(folder.name):
        return True
    return (any(folder.glob("events.out.tfevents.*")) or any(folder.glob("epoch[0-9]*"))
            or any(folder.glob("step[0-9]*")))


def runs_in(output_dir: Path) -> list[Path]:
    """Run folders of ``output_dir``, oldest first (names are UTC start times)."""
    try:
        return sorted(p for p in output_dir.iterdir() if p.is_dir() and RUN_NAME.fullmatch(p.name))
    except OSError:
        return []


def _newest_log(folder: Path) -> Path | None:
    """The newest ``*.log``/``.txt``/``.out`` — but a ``.txt`` beside a same-named image is a caption."""
    try:
        files = [p for p in folder.iterdir() if p.is_file()]
    except OSError:
        return None
    media = {p.stem for p in files if p.suffix.lower() in _MEDIA_SUFFIXES}
    logs = [p for p in files if p.suffix in _LOG_SUFFIXES and p.name != "latest"
            and not (p.suffix == ".txt" and p.stem in media)]
    return max(logs, key=lambda p: p.stat().st_mtime, default=None)


def prepared_output_dir(folder: Path) -> Path | None:
    """``output_dir`` of the main TOML in a folder written by ``prepare`` (or any folder
    holding a main TOML), else None."""
    for candidate in sorted(folder.glob("*.toml")):
        config = read_main_toml(candidate)
        if config is not None and isinstance(config.raw.get("output_dir"), str):
            out = Path(config.raw["output_dir"]).expanduser()
            return out if out.is_absolute() else folder / out
    return None


def resolve_run(target: Path | str, log: Path | str | None = None) -> RunPaths:
    """Work out the run folder and log file for ``target``.

    ``target`` is a run folder, an output folder (its newest run), a folder
    written by ``prepare`` (the newest run of its output folder), or a log.
    ``log`` names the console log explicitly; otherwise the newest ``*.log``
    (``.txt``/``.out``) in the run folder is used, or in the output folder when
    the run is that folder's newest one, or in the prepare folder's ``logs/``.
    An output folder without runs yet is fine when a log or a main TOML says a
    run is coming (``run_dir`` is then None). Raises :class:`RunNotFound`.
    """
    path = Path(target).expanduser()
    log_path = Path(log).expanduser() if log is not None else None
    if path.is_file():
        parent = path.parent
        return RunPaths(parent if _looks_like_run(parent) else None, path)
    if not path.is_dir():
        raise RunNotFound(f"{path} does not exist — give a run folder, an output folder, a prepare folder "
                          "or a log file")
    if _looks_like_run(path):
        return RunPaths(path, log_path or find_log(path), path.parent)
    output_dir = prepared_output_dir(path)
    log_dirs = [path / "logs", path] if output_dir is not None else [path]
    output_dir = output_dir or path
    runs = runs_in(output_dir)
    if runs:
        return RunPaths(runs[-1], log_path or _unlinked_log(log_dirs[0], runs[-1]) or find_log(runs[-1]), output_dir)
    log_path = log_path or next((found for d in log_dirs if (found := _newest_log(d))), None)
    if log_path is None and output_dir == path:
        raise RunNotFound(f"{path} holds no DiffusionPipe run (no YYYYMMDD_HH-MM-SS folder, "
                          "no event files, no epochN/ or stepN/), no main TOML and no log file")
    return RunPaths(None, log_path, output_dir)


def _unlinked_log(logs: Path, newest_run: Path) -> Path | None:
    """A launcher log not yet linked into any run folder and newer than the newest run:
    a run still caching latents, before its folder exists."""
    if logs.name != "logs":
        return None
    log = _newest_log(logs)
    try:
        if log is not None and log.stat().st_nlink == 1 and log.stat().st_mtime > newest_run.stat().st_mtime:
            return log
    except OSError:
        pass
    return None


def find_log(run_dir: Path) -> Path | None:
    """The newest console log in ``run_dir``, else in its output folder if this is its newest run."""
    try:
        found = _newest_log(run_dir)
        parent = run_dir.parent
        if found is None and runs_in(parent)[-1:] == [run_dir]:
            found = _newest_log(parent)
    except OSError:
        return None
    return found


@dataclass(frozen=True)
class RunConfig:
    """The parts of the run's copied main TOML that watching needs (upstream defaults otherwise)."""
    epochs: int | None = None
    max_steps: int | None = None
    eval_names: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def _get(self, key: str, default: int) -> int:
        return _int(self.raw.get(key)) or default

    @property
    def logging_steps(self) -> int:
        """``train/loss`` is written every this many steps."""
        return self._get("logging_steps", 1)

    @property
    def steps_per_print(self) -> int:
        """DeepSpeed prints the step lines every this many steps."""
        return self._get("steps_per_print", 1)

    @property
    def x_axis_examples(self) -> bool:
        """TensorBoard x is the number of examples seen instead of the step."""
        return self.raw.get("x_axis_examples") is True

    @property
    def eval_every_n_epochs(self) -> int | None:
        return _int(self.raw.get("eval_every_n_epochs"))

    @property
    def final_save(self) -> str | None:
        """The save the trainer makes when the run ends normally."""
        if self.max_steps:
            return None  # ``stepN`` if max_steps is reached first, else the last epoch: unknown up front
        return f"epoch{self.epochs}" if self.epochs else None


def read_run_config(run_dir: Path | None) -> RunConfig:
    """Read the main TOML the trainer copied into the run folder (empty if none).

    A resumed run gets no new copy; every save folder holds one too, so those are
    read when the run folder's own copy is missing.
    """
    if run_dir is not None:
        candidates = sorted(run_dir.glob("*.toml")) + sorted(run_dir.glob("epoch*/*.toml")) + sorted(
            run_dir.glob("step*/*.toml"))
        for candidate in candidates:
            config = read_main_toml(candidate)
            if config is not None:
                return config
    return RunConfig()


def read_main_toml(path: Path) -> RunConfig | None:
    """A DiffusionPipe main TOML (one with ``[model]`` or ``epochs``), else None."""
    try:
        data = toml.load(path)
    except (OSError, toml.TomlDecodeError, UnicodeDecodeError):
        return None
    if "model" not in data and "epochs" not in data:
        return None
    return RunConfig(_int(data.get("epochs")), _int(data.get("max_steps")),
                     _eval_names(data.get("eval_datasets", [])), data, path)


def _eval_names(entries: Any) -> list[str]:
    names = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        names.append(entry.get("name", f"eval{i}") if isinstance(entry, dict) else f"eval{i}")
    return names


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
