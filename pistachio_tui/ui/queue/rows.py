"""What a queue or history row says about a prompt: its workflow, positive prompt and seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pistachio_tui.comfy.prompt_names import WORKFLOW_KEY, prompt_name
from pistachio_tui.workflow.edit import find_params

__all__ = ["WORKFLOW_KEY", "PromptSummary", "summarize"]


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
    return PromptSummary(prompt_name(prompt, extra_data) or "—", " ".join(positive.split()) or "—", seed)
