"""Command-line entry point.

Each module in this package that defines ``register(subparsers)`` adds its own
subcommands; ``register`` must set ``func`` (an ``argparse.Namespace -> int``
callable, sync or async) as the parser default. Discovery keeps the commands of
separate features in separate files.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from pistachio_tui import __version__
from pistachio_tui.cli import exit_codes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pistachio",
        description="Terminal workbench for ComfyUI, RunPod pods and DiffusionPipe training.",
    )
    parser.add_argument("--version", action="version", version=f"pistachio {__version__}")
    parser.add_argument("--config", help="path of the settings file (default: the user config dir)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # No subcommand: open the full-screen app, like k9s or lazygit do.
        from pistachio_tui.cli.app import open_app

        return open_app(args)
    try:
        result = func(args)
        # Commands are plain or ``async def`` functions: an awaitable result is their coroutine.
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        # Flush here, not at interpreter exit, so a closed pipe is caught below.
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED
    except BrokenPipeError:
        # `pistachio ... | head` closed our stdout: not an error worth a traceback.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exit_codes.FAILED
    except exit_codes.UsageError as exc:
        print(f"{getattr(args, 'command', None) or 'pistachio'}: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    except Exception as exc:
        return _unexpected(args, exc)
    return exit_codes.OK if result is None else int(result)


#: The debug log is cut back to this size before a new entry is added.
DEBUG_LOG_MAX = 1024 * 1024


def debug_log_path() -> Path:
    """Where tracebacks of unexpected errors go (one file, kept small)."""
    from pistachio_tui.config import state_dir

    return state_dir() / "debug.log"


def _unexpected(args: argparse.Namespace, exc: Exception) -> int:
    """A bug reached the top: one line for the person, the traceback for the bug report."""
    from pistachio_tui.redact import scrub_urls

    summary = scrub_urls(f"{type(exc).__name__}: {exc}".splitlines()[0])[:300]
    where = "(no debug log could be written)"
    try:
        path = debug_log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > DEBUG_LOG_MAX:
            path.unlink()
        entry = (f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pistachio {__version__} "
                 f"{scrub_urls(' '.join(sys.argv[1:]))}\n"
                 + scrub_urls("".join(traceback.format_exception(exc))))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(entry)
        where = f"details in {path}"
    except OSError:
        pass
    command = getattr(args, "command", None) or "pistachio"
    print(f"{command}: unexpected error ({summary}); this is a bug in Pistachio — {where}", file=sys.stderr)
    return exit_codes.INTERNAL
