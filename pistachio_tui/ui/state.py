"""App-level state that more than one screen reads: the open workflow.

The Workflows screen sets it; the Batch screen reads it (and watches it to
say what a sweep would run). Screens never reach into each other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pistachio_tui.ui.workflows.preview import Preview
from pistachio_tui.workflow.edit import apply_edits


@dataclass(frozen=True)
class OpenWorkflow:
    """A workflow open on the Workflows screen and the form values typed for its parameters, in order."""

    preview: Preview
    values: tuple[str, ...]

    @classmethod
    def as_saved(cls, preview: Preview) -> OpenWorkflow:
        """Just opened: every form value as the file has it."""
        return cls(preview, tuple(str(param.value) for param in preview.params))

    @property
    def name(self) -> str:
        return self.preview.workflow.name

    @property
    def converted(self) -> bool:
        """False while a UI-format workflow waits for a server's node list to be converted."""
        return self.preview.prompt is not None

    def prompt(self) -> dict[str, Any]:
        """The API prompt with the typed values applied (``WorkflowError`` names a bad one)."""
        if self.preview.prompt is None:
            raise ValueError("the workflow is not converted yet: open it with a server connected")
        return apply_edits(self.preview.prompt, zip(self.preview.params, self.values))
