"""What a person can give Pistachio to get past a problem, named once for every front end.

Core messages state the fact ("the server has no Manager and its ComfyUI folder is
not known here") and carry a :class:`Need`; the CLI words the remedy as its flag
(``--comfy-dir``), the TUI as its setting or its own key. So neither front end
tells its users about the other's controls.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Need(str, Enum):
    """Something only the person can provide."""

    #: The server's ComfyUI folder on this machine: model files are written into its ``models/``.
    COMFY_DIR = "comfy_dir"
    #: Leave to Pistachio the choice of a model's source (the best exact match).
    MODEL_CHOICE = "model_choice"
    #: A ComfyUI node list (``/object_info``) to convert a workflow saved by the editor.
    NODE_LIST = "node_list"
    #: Where the diffusion-pipe checkout is.
    DIFFUSION_PIPE = "diffusion_pipe"


def needs_of(exc: BaseException) -> Need | None:
    """The :class:`Need` an exception carries (its ``needs`` attribute), if any."""
    needs = getattr(exc, "needs", None)
    return needs if isinstance(needs, Need) else None


def unique(needs: Iterable[Need]) -> list[Need]:
    """Each need once, in first-seen order."""
    return list(dict.fromkeys(needs))
