"""Model files the server already has under another name, and the corrected workflow.

A workflow saved on Windows asks for ``SDXL\\model.safetensors``; another user
keeps the file as ``model.safetensors`` or ``sdxl/model.safetensors``. ComfyUI
compares names exactly, so the prompt is refused although the file is there.
The loader input's own choices (``object_info``) are what the server will
accept, so a missing name is matched against them by file name, ignoring
``\\`` vs ``/`` and subfolders, and the workflow's value is rewritten to the
server's name (``folder_paths.get_filename_list`` lists files relative to the
folder, with the OS separator).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pistachio_tui.workflow.load import Workflow, model_refs_of


def _norm(name: str) -> str:
    return name.replace("\\", "/").strip("/")


def _base(name: str) -> str:
    return PurePosixPath(_norm(name)).name


@dataclass(frozen=True)
class OnDisk:
    """A server file that is the one the workflow asks for under another name."""

    wanted: str
    server_name: str
    #: How many server files share the file name (the first by path is taken).
    alternatives: int = 1


def match_on_server(wanted: str, choices: list[Any]) -> OnDisk | None:
    """The server's name for ``wanted`` among ``choices``: the same path with the
    other separator, else the same file name in any subfolder (exact case first)."""
    names = sorted({c for c in choices if isinstance(c, str)}, key=lambda c: (c.count("/") + c.count("\\"), c))
    same_path = [c for c in names if _norm(c) == _norm(wanted)]
    if same_path:
        return OnDisk(wanted, same_path[0])
    for key in (_base, lambda n: _base(n).lower()):
        found = [c for c in names if key(c) == key(wanted)]
        if found:
            # A file kept in the same subfolder (any case) is the likelier twin.
            tail = _norm(wanted).lower()
            found.sort(key=lambda c: not _norm(c).lower().endswith(tail))
            return OnDisk(wanted, found[0], len(found))
    return None


def elsewhere(wanted: str, listings: dict[str, list[str]]) -> list[str]:
    """``folder/name`` of server files with this file name in any model folder."""
    return [f"{folder}/{_norm(name)}" for folder, names in sorted(listings.items())
            for name in names if isinstance(name, str) and _base(name).lower() == _base(wanted).lower()]


def _replace_in(values: Any, old: str, new: str) -> int:
    count = 0
    if isinstance(values, list):
        for i, value in enumerate(values):
            if value == old:
                values[i] = new
                count += 1
    elif isinstance(values, dict):
        for key, value in values.items():
            if value == old:
                values[key] = new
                count += 1
    return count


def rename_model(workflow: Workflow, old: str, new: str) -> int:
    """Rewrite every use of model name ``old`` as ``new``, in place: widget values,
    API inputs and ``models`` metadata. Returns how many values changed."""
    count = 0
    if workflow.ui is not None:
        graphs = [workflow.ui]
        definitions = workflow.ui.get("definitions")
        if isinstance(definitions, dict) and isinstance(definitions.get("subgraphs"), list):
            graphs += [g for g in definitions["subgraphs"] if isinstance(g, dict)]
        for graph in graphs:
            for node in graph.get("nodes") or []:
                if not isinstance(node, dict):
                    continue
                count += _replace_in(node.get("widgets_values"), old, new)
                properties = node.get("properties")
                if isinstance(properties, dict):
                    count += _rename_entries(properties.get("models"), old, new)
        count += _rename_entries(workflow.ui.get("models"), old, new)
        workflow.model_refs = model_refs_of(workflow.ui)
        workflow.refresh()
    if workflow.api is not None:
        for node in workflow.api.values():
            if isinstance(node, dict):
                count += _replace_in(node.get("inputs"), old, new)
    return count


def _rename_entries(entries: Any, old: str, new: str) -> int:
    count = 0
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("name") == old:
            entry["name"] = new
            count += 1
    return count


def fixed_path(source: str | None, name: str, fallback: Path | None = None) -> Path:
    """Where the corrected workflow goes by default: ``<stem>.fixed.json`` beside the original,
    or in ``fallback`` (else the current folder) for a workflow that is no local file."""
    if source and Path(source).is_file():
        original = Path(source)
        return original.with_name(f"{original.stem}.fixed.json")
    stem = PurePosixPath((name or "workflow").replace("\\", "/")).stem or "workflow"
    return (fallback or Path()) / f"{stem}.fixed.json"


def save_workflow(workflow: Workflow, target: Path) -> Path:
    """Write the workflow (UI format when it has a graph, else the API prompt) atomically."""
    data = workflow.ui if workflow.ui is not None else workflow.api
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(target)
    return target
