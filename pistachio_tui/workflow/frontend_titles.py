"""The title the web editor gives a node nobody renamed: its English display name.

The editor names a node ``st("nodeDefs.<class>.display_name", <server display_name>)``:
the display name from its own English locale where that has the class, the
server's otherwise (``translateNodeDef`` in frontend 1.35.9). The locale was
collected from a server when the frontend was built, so for a few classes it
differs from what a later server reports (ComfyUI 0.8.0 calls
``ByteDanceSeedreamNode`` "ByteDance Seedream 4.5"; frontend 1.35.9 still shows
"ByteDance Seedream 4"). ``data/frontend-1.35.9-en-titles.json`` holds that
locale's display names (class → name), read from the release bundle of
``comfyui-frontend-package`` 1.35.9.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

_TITLES_FILE = Path(__file__).with_name("data") / "frontend-1.35.9-en-titles.json"


@cache
def _titles() -> dict[str, str]:
    return json.loads(_TITLES_FILE.read_text(encoding="utf-8"))


def frontend_title(class_type: str) -> str | None:
    """The editor's own English display name for ``class_type``, if its locale has one."""
    return _titles().get(class_type)
