"""Where jobs run: ComfyUI servers (their own queue) and RunPod serverless endpoints.

Each target runs one API prompt at a time per slot and returns its output files.
Anything that means "this machine did not finish the job" becomes
``TargetFailed`` so the dispatcher can hand the job to another target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class TargetFailed(Exception):
    """The target did not deliver the job; ``retry`` says whether another may.

    ``refused`` marks a target that works but will not take this job (ComfyUI's validation
    refused the prompt): it says nothing about the target's health, so it never takes the
    target out of the batch, and the job fails once every live target has refused it.
    """

    def __init__(self, message: str, *, retry: bool = True, refused: bool = False) -> None:
        super().__init__(message)
        self.retry = retry
        self.refused = refused


@dataclass
class Output:
    """One file a job produced."""

    name: str
    data: bytes


class Target(Protocol):
    name: str
    #: Jobs this target may hold at once (running plus waiting in its own queue).
    slots: int

    async def check(self, node_types: set[str]) -> str | None:
        """None when the target can run prompts using these node types, else why not."""

    async def run(self, prompt: dict[str, Any]) -> list[Output]: ...

    async def cancel(self) -> None:
        """Stop what this target is running for the batch."""

    async def aclose(self) -> None: ...
