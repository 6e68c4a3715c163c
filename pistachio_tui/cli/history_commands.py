"""``pistachio history``: the prompt journal, searched from the command line.

::

    pistachio history [--server URL|NAME] [--search TEXT] [--seed N] [--status S]
                      [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--limit N] [--json]

Every prompt the app saw on every server, newest first, even when the server has
restarted or the pod is gone. Exit codes: USAGE for a bad date or settings file,
FAILED when the journal cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from pistachio_tui.cli import exit_codes

STATUSES = ("queued", "running", "success", "error", "interrupted", "lost")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history", help="search every prompt Pistachio has seen, on every server",
        description="Search the prompt journal: every prompt the app saw on every server, newest first.")
    parser.add_argument("--server", metavar="URL|NAME", help="only this server (a URL or a configured name)")
    parser.add_argument("--search", metavar="TEXT", help="words of the prompt text, workflow, model or LoRA names")
    parser.add_argument("--seed", type=int, help="only prompts with this seed")
    parser.add_argument("--status", choices=STATUSES, help="only prompts that ended so (or are still so)")
    parser.add_argument("--since", metavar="DATE", help="queued on or after this day (YYYY-MM-DD) or time (ISO)")
    parser.add_argument("--until", metavar="DATE", help="queued before this day or time")
    parser.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per prompt")
    parser.set_defaults(func=run_history)


def _when(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"{flag} {text!r}: give a day as YYYY-MM-DD or a time as YYYY-MM-DDTHH:MM") from None


def run_history(args: argparse.Namespace) -> int:
    from pistachio_tui.config import ConfigError, journal_path, load_settings
    from pistachio_tui.journal import Journal, JournalError

    try:
        settings = load_settings(Path(args.config) if getattr(args, "config", None) else None)
        since, until = _when(args.since, "--since"), _when(args.until, "--until")
    except (ConfigError, ValueError) as exc:
        print(f"history: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    server = None
    if args.server:
        configured = settings.server(args.server)
        server = configured.url if configured else args.server.rstrip("/")
    names = {s.url: s.name for s in settings.servers}
    path = journal_path()
    if not path.exists():
        print("history: no prompt seen yet (the journal is written while the app runs)", file=sys.stderr)
        return exit_codes.OK
    try:
        with Journal(path, max_entries=settings.journal_max_entries, keep_days=settings.journal_keep_days) as journal:
            found = journal.search(args.search, server=server, seed=args.seed, status=args.status,
                                   since=since, until=until, limit=args.limit)
    except JournalError as exc:
        print(f"history: {exc}", file=sys.stderr)
        return exit_codes.FAILED
    for entry in found:
        if args.json:
            print(json.dumps({
                "server": entry.server, "server_name": names.get(entry.server), "prompt_id": entry.prompt_id,
                "status": entry.status, "workflow": entry.workflow, "seed": entry.seed, "positive": entry.positive,
                "models": list(entry.models), "outputs": list(entry.outputs), "error": entry.error,
                "queued_at": entry.queued_at, "started_at": entry.started_at, "finished_at": entry.finished_at,
            }))
        else:
            print(_line(entry, names))
    return exit_codes.OK


def _line(entry, names: dict[str, str]) -> str:
    from pistachio_tui.format import duration

    stamp = entry.queued_at or entry.started_at or entry.finished_at
    when = datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else "—"
    text = " ".join((entry.positive or "").split())
    if len(text) > 60:
        text = text[:59] + "…"
    seed = "—" if entry.seed is None else str(entry.seed)
    return (f"{when}  {names.get(entry.server, entry.server):<16.16}  {entry.status:<11} {duration(entry.duration):>7}  "
            f"seed {seed:<12} {len(entry.outputs)} out  {entry.prompt_id[:8]}  {text}")
