"""``pistachio queue``: a server's running, pending and recent prompts, of every client.

::

    pistachio queue [--server URL|NAME] [--json] [--follow] [--limit N]

Without ``--follow``: one listing and exit. With it: one line (or one JSON
object per line) for every change of any prompt, including prompts other
clients queued reaching their final status, until Ctrl-C. Exit codes: 0, 3
server unreachable, 64 bad settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from pistachio_tui.cli import exit_codes
from pistachio_tui.cli.comfy_commands import fail, settings_or_usage
from pistachio_tui.format import duration

if TYPE_CHECKING:
    from pistachio_tui.comfy.session import ServerSession, SessionUpdate
    from pistachio_tui.comfy.tracker import PromptState


def register(subparsers: argparse._SubParsersAction) -> None:
    queue = subparsers.add_parser(
        "queue", help="running, pending and recent prompts of a ComfyUI server (every client's)",
        description="List a ComfyUI server's running, pending and recent prompts; --follow prints every "
                    "change until Ctrl-C.")
    queue.add_argument("--server", help="server URL or configured name")
    queue.add_argument("--json", action="store_true", help="JSON: one object, or one object per line with --follow")
    queue.add_argument("--follow", action="store_true", help="print a line per change until Ctrl-C")
    queue.add_argument("--limit", type=int, default=10, metavar="N", help="recent finished prompts to list (10)")
    queue.set_defaults(func=queue_command)


def prompt_record(state: PromptState) -> dict[str, Any]:
    """What scripts get about one prompt (``--json``)."""
    error = state.error or state.interrupted
    return {
        "prompt_id": state.prompt_id,
        "status": state.status,
        "ours": state.ours,
        "fraction": round(state.fraction, 4),
        "node": state.current_title,
        "value": state.value,
        "max": state.max,
        "it_per_s": None if state.it_per_s is None else round(state.it_per_s, 3),
        "eta_s": None if state.eta_s is None else round(state.eta_s, 1),
        "duration_s": None if state.duration is None else round(state.duration, 3),
        "outputs": [{"filename": o.filename, "subfolder": o.subfolder, "type": o.type} for o in state.outputs],
        "error": None if error is None else _error_text(state),
    }


def _error_text(state: PromptState) -> str | None:
    if state.error is not None:
        return f"{state.error.node_type or 'node ' + state.error.node_id}: {state.error.exception_message}"
    if state.interrupted is not None:
        return f"interrupted in {state.interrupted.node_type or state.interrupted.node_id}"
    return None


def describe(state: PromptState) -> str:
    """One readable line: id, status, progress or outcome."""
    parts = [state.prompt_id[:8], f"{state.status:<11}", f"{state.fraction * 100:5.1f}%"]
    if not state.finished:
        if state.current_title:
            parts.append(state.current_title + (f" {state.value}/{state.max}" if state.max else ""))
        if state.it_per_s:
            parts.append(f"{state.it_per_s:.1f} it/s")
        if state.eta_s:
            parts.append(f"ETA {duration(state.eta_s)}")
    else:
        if state.duration is not None:
            parts.append(f"{state.duration:.1f}s")
        if state.outputs:
            names = ", ".join(o.filename for o in state.outputs[:3])
            parts.append(f"{len(state.outputs)} output(s): {names}" + (" …" if len(state.outputs) > 3 else ""))
        error = _error_text(state)
        if error:
            parts.append(error)
    if not state.ours:
        parts.append("(other client)")
    return "  ".join(parts)


def snapshot(session: ServerSession, limit: int) -> dict[str, list[PromptState]]:
    """Running, pending and the newest ``limit`` finished prompts as the session knows them."""
    running = [s for item in session.queue.running if (s := session.tracker.get(item.prompt_id)) is not None]
    recent: list[PromptState] = []
    for entry in list(session.history.values())[:limit]:
        recent.append(session.tracker.get(entry.prompt_id) or session.tracker.apply_history(entry))
    return {"running": running, "pending": session.pending(), "recent": recent}


class Follower:
    """Prints a prompt again only when what is printed about it changed."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self._last: dict[str, str] = {}

    def show(self, state: PromptState) -> None:
        record = prompt_record(state)
        key = json.dumps({k: record[k] for k in ("status", "node", "value", "outputs", "error")}) + \
            f"{int(state.fraction * 100)}"
        if self._last.get(state.prompt_id) == key:
            return
        self._last[state.prompt_id] = key
        stamp = time.strftime("%H:%M:%S")
        if self.as_json:
            self.out.write(json.dumps({"time": stamp, **record}) + "\n")
        else:
            self.out.write(f"{stamp}  {describe(state)}\n")
        self.out.flush()

    def on_update(self, update: SessionUpdate) -> None:
        session = update.session
        if update.prompt is not None:
            self.show(update.prompt)
            return
        for item in session.queue.running + session.queue.pending:
            state = session.tracker.get(item.prompt_id)
            if state is not None:
                self.show(state)


async def follow(session: ServerSession, out: TextIO, as_json: bool, stop: asyncio.Event) -> None:
    """Print every change of any prompt on ``session`` until ``stop`` is set."""
    follower = Follower(out, as_json)
    unsubscribe = session.subscribe(follower.on_update)
    try:
        for state in session.tracker.states():
            if not state.finished:
                follower.show(state)
        await stop.wait()
    finally:
        unsubscribe()


async def queue_command(args: argparse.Namespace) -> int:
    """``pistachio queue``."""
    from pistachio_tui.comfy.errors import ComfyError
    from pistachio_tui.comfy.session import ServerSession
    from pistachio_tui.config import ServerConfig

    resolved = settings_or_usage(args)
    if isinstance(resolved, int):
        return resolved
    url, headers = resolved
    session = ServerSession(ServerConfig("cli", url, headers), max_history=max(1, args.limit))
    try:
        try:
            await session.refresh_queue()
            await session.refresh_history()
        except ComfyError as exc:
            return fail(exc, args.json, url)
        if not args.follow:
            _print_snapshot(url, snapshot(session, args.limit), args.json, sys.stdout)
            return exit_codes.OK
        session.start()
        await follow(session, sys.stdout, args.json, asyncio.Event())
        return exit_codes.OK
    finally:
        await session.stop()


def _print_snapshot(url: str, lists: dict[str, list[PromptState]], as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps({"server": url, **{k: [prompt_record(s) for s in v] for k, v in lists.items()}},
                             indent=2) + "\n")
        return
    out.write(f"ComfyUI at {url}\n")
    for title, states in lists.items():
        out.write(f"{title} ({len(states)})\n")
        for state in states:
            out.write(f"  {describe(state)}\n")
