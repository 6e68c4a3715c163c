"""What a queue or history row says about a prompt: its workflow, positive prompt and seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pistachio_tui.workflow.edit import find_params

#: Key in a prompt's ``extra_data`` naming the workflow it came from. ComfyUI keeps
#: unknown ``extra_data`` keys with the queued prompt and returns them in /queue and
#: /history, without writing them into the images (``extra_pnginfo`` would be).
WORKFLOW_KEY = "pistachio_workflow"


@dataclass(frozen=True)
class PromptSummary:
    workflow: str
    positive: str
    seed: str


def summarize(prompt: dict[str, Any], extra_data: dict[str, Any]) -> PromptSummary:
    """The facts a person recognises a prompt by; "—" for what it does not have."""
    params = find_params(prompt)
    positive = next((str(p.value) for p in params if p.kind == "prompt" and p.role == "positive"),
                    next((str(p.value) for p in params if p.kind == "prompt"), ""))
    seed = next((str(p.value) for p in params if p.kind == "seed"), "—")
    name = extra_data.get(WORKFLOW_KEY)
    return PromptSummary(str(name) if name else "—", " ".join(positive.split()) or "—", seed)
