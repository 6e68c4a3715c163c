"""The editor's ``%…%`` replacements in output file names (``%date:yyyy-MM-dd%``, ``%KSampler.seed%``).

Save nodes' ``filename_prefix`` (and PrimitiveNodes with "Run widget replace on
values" switched on) are expanded when the prompt is built, so the API prompt
carries the final text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

#: Node types whose ``filename_prefix`` the editor expands.
SAVE_NODE_TYPES = frozenset({
    "SaveImage", "SaveVideo", "SaveAnimatedWEBP", "SaveWEBM", "SaveAudio", "SaveGLB", "SaveAnimatedPNG",
    "CLIPSave", "VAESave", "ModelSave", "LoraSave", "SaveLatent",
})
_PATTERN = re.compile(r"%([^%]+)%")
_DATE_PARTS = re.compile(r"dd?|MM?|hh?|mm?|ss?|yyy?y?")
_UNSAFE = re.compile(r'[/?<>\\:*|"\x00-\x1f\x7f]')


def format_date(fmt: str, now: datetime) -> str:
    """``yyyy-MM-dd hh:mm:ss`` style formatting as the editor does it (``hh`` is 24-hour)."""
    def part(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "yy":
            return str(now.year)[2:]
        if token == "yyyy":
            return str(now.year)
        if token[0] == "y":
            return token
        value = {"d": now.day, "M": now.month, "h": now.hour, "m": now.minute, "s": now.second}[token[0]]
        return str(value).rjust(len(token), "0")

    return _DATE_PARTS.sub(part, fmt)


def js_string(value: Any) -> str:
    """``String(value ?? '')`` as JavaScript writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def apply_text_replacements(text: str, lookup: Callable[[str, str], tuple[bool, Any]], now: datetime) -> str:
    """Expand ``%date:FMT%`` and ``%Node.widget%``; unknown patterns stay as they are.

    ``lookup(node, widget)`` finds a node by its "Node name for S&R" or title
    and returns ``(found, value)``.
    """
    def replace(match: re.Match[str]) -> str:
        body = match.group(1)
        parts = body.split(".")
        if len(parts) != 2:
            if parts[0].startswith("date:"):
                return format_date(parts[0][5:], now)
            return match.group(0)
        found, value = lookup(parts[0], parts[1])
        return _UNSAFE.sub("_", js_string(value)) if found else match.group(0)

    return _PATTERN.sub(replace, text)
