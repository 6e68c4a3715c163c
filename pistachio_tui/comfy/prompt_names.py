"""A name a person recognises a queued prompt by, from what ComfyUI keeps with it.

Pistachio queues its prompts with the workflow's file name in ``extra_data``
(:data:`WORKFLOW_KEY`; ComfyUI returns unknown ``extra_data`` keys in ``/queue``
and ``/history`` without writing them into images). A prompt queued elsewhere —
the ComfyUI web UI, a script — has no file name: the web UI sends the graph as
``extra_pnginfo.workflow``, which has none either (see the recorded
``success.history.json``). What it does have is the prefix its Save node writes
files under, and the checkpoint it loads: the name is derived from those.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

#: Key in a prompt's ``extra_data`` naming the workflow file it came from.
WORKFLOW_KEY = "pistachio_workflow"
#: ComfyUI's default ``filename_prefix``: it names nothing.
DEFAULT_PREFIX = "ComfyUI"
#: ``%date:yyyy-MM-dd%`` and ``%KSampler.seed%`` in a prefix are filled in at save time.
_PLACEHOLDER = re.compile(r"%[^%]*%")
#: Inputs that name the main model a prompt loads.
_MODEL_INPUTS = ("ckpt_name", "unet_name")


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)


def _nodes(prompt: dict[str, Any]) -> list[dict[str, Any]]:
    return [prompt[key] for key in sorted(prompt, key=_node_order) if isinstance(prompt[key], dict)]


def _inputs(node: dict[str, Any]) -> dict[str, Any]:
    inputs = node.get("inputs")
    return inputs if isinstance(inputs, dict) else {}


def _prefix_name(prompt: dict[str, Any]) -> str | None:
    for node in _nodes(prompt):
        prefix = _inputs(node).get("filename_prefix")
        if not isinstance(prefix, str):
            continue
        parts = [p for p in _PLACEHOLDER.sub("", prefix).strip().split("/") if p.strip()]
        name = "/".join(parts)
        if name and name != DEFAULT_PREFIX:
            return name
    return None


def _model_name(prompt: dict[str, Any]) -> str | None:
    for node in _nodes(prompt):
        inputs = _inputs(node)
        for key in _MODEL_INPUTS:
            value = inputs.get(key)
            if isinstance(value, str) and value.strip():
                return PurePosixPath(value.replace("\\", "/")).stem
    return None


def prompt_name(prompt: dict[str, Any], extra_data: dict[str, Any] | None = None) -> str | None:
    """The workflow's file name when Pistachio queued it; else its Save node's prefix (unless the
    default "ComfyUI"), else the stem of the checkpoint it loads; None when it has none of these."""
    named = (extra_data or {}).get(WORKFLOW_KEY)
    if isinstance(named, str) and named.strip():
        return named
    return _prefix_name(prompt) or _model_name(prompt)
