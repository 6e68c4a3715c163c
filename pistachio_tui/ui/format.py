"""Small text formatters shared by the screens (sizes, durations, states)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from pistachio_tui import format as core_format
from pistachio_tui.comfy.session import CONNECTED, DOWN, RECONNECTING

# Plain colour names: they read the same in tables, Rich text and every theme.
_STATE_STYLE = {CONNECTED: "bold green", RECONNECTING: "bold yellow", DOWN: "bold red"}
_STATUS_STYLE = {"success": "green", "error": "red", "interrupted": "yellow",
                 "running": "cyan", "queued": "magenta"}


def esc(value: object) -> str:
    """``value`` as literal text inside Textual markup.

    Every ``[`` is escaped: Textual's own ``escape`` leaves ``[Pony]`` alone (it
    looks like no tag), yet its parser then drops it as an unknown style.
    """
    return str(value).replace("[", r"\[")


def plain(value: object) -> Text:
    """A table cell, tree label or option that shows ``value`` as is (a ``str`` there is markup)."""
    return value if isinstance(value, Text) else Text(str(value))


def short_path(path: Path, limit: int | None = None) -> str:
    """``path`` as a person reads it: relative to the working folder when inside it, ``~`` for home;
    longer than ``limit``, it is cut in the middle so its start and its own name stay whole."""
    text = str(path)
    for base, shown in ((Path.cwd(), ""), (Path.home(), "~")):
        if path.is_absolute() and path.is_relative_to(base) and path != base:
            text = str(Path(shown) / path.relative_to(base)) if shown else str(path.relative_to(base))
            break
    if limit is None or len(text) <= limit:
        return text
    tail = "/" + path.name
    if len(tail) + 2 > limit:
        return "…" + text[-(limit - 1):]
    return text[: limit - len(tail) - 1] + "…" + tail


def gib(n_bytes: int | float | None) -> str:
    # Zero reads as unknown here: a server reports 0 for memory it does not measure.
    return core_format.gib(n_bytes) if n_bytes else "—"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def state_text(state: str) -> Text:
    """A server state as a coloured dot and word."""
    return Text.from_markup(f"[{_STATE_STYLE.get(state, 'dim')}]●[/] {state}")


def status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, "dim"))
