"""A batch's own copy of its spec, kept in its output folder so the folder alone resumes it.

The copy is an ordinary batch file (see ``spec.load_batch_file``) with absolute
paths and ``output = "."``; the journal beside it says which jobs are done, and
the same ``batch_seed`` makes the same jobs, so a resumed batch skips them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pistachio_tui.fleet.spec import BatchSpec, BatchSpecError, load_batch_file

#: Hidden, like the journal: a user's own ``batch.toml`` in the same folder is never overwritten.
RESUME_FILE = ".pistachio-batch.toml"


def _value(value: Any) -> str:
    """A TOML value for what a batch spec holds (JSON strings are valid TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"a batch file cannot hold {type(value).__name__} values")


def batch_file_text(spec: BatchSpec) -> str:
    """``spec`` as a batch file whose output is the folder the file sits in."""
    lines = [
        "# Written by Pistachio when this batch was loaded: pick this folder on the Batch screen to resume.",
        f"workflow = {_value(str(spec.workflow.resolve()))}",
        f"count = {spec.count}",
        f"seed_mode = {_value(spec.seed_mode)}",
        f"batch_seed = {spec.batch_seed}",
        'output = "."',
    ]
    if spec.start_seed is not None:
        lines.append(f"start_seed = {spec.start_seed}")
    if spec.prompts:
        lines.append(f"prompts = {_value(spec.prompts)}")
    if spec.wildcard_dir is not None:
        lines.append(f"wildcard_dir = {_value(str(spec.wildcard_dir.resolve()))}")
    if spec.endpoints:
        endpoints = [{"id": e.id, **({"cost_per_s": e.cost_per_s} if e.cost_per_s is not None else {})}
                     for e in spec.endpoints]
        lines.append(f"endpoints = {_value(endpoints)}")
    if spec.grid:
        lines += ["", "[grid]", *(f"{json.dumps(name)} = {_value(values)}" for name, values in spec.grid.items())]
    return "\n".join(lines) + "\n"


def write_resume_file(spec: BatchSpec, out_dir: Path) -> Path:
    """Keep ``spec`` in ``out_dir`` (created if needed) so the folder can be picked to resume the batch."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RESUME_FILE
    path.write_text(batch_file_text(spec), encoding="utf-8")
    return path


def load_resume_folder(folder: Path) -> BatchSpec:
    """The batch an output folder belongs to; ``BatchSpecError`` says so when the folder has none."""
    path = folder / RESUME_FILE
    if not path.is_file():
        raise BatchSpecError(f"{folder} holds no batch Pistachio started (no {RESUME_FILE}): "
                             "pick a batch file, or the output folder of a batch loaded here")
    spec = load_batch_file(path)
    spec.name = folder.name
    return spec
