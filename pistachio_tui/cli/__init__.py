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
import json
import os
import pkgutil
import sys
import time
import traceback
from pathlib import Path
from typing import TextIO

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

        func = open_app
    watch = _JsonWatch() if getattr(args, "json", False) else None
    try:
        code = _run(args, func)
    finally:
        if watch is not None:
            watch.close()
    if watch is not None and code != exit_codes.OK and not watch.wrote_stdout:
        # With --json, stdout always holds JSON: a script reads the failure there too.
        message = watch.last_error.removeprefix("error: ") or f"exit code {code}"
        print(json.dumps({"error": message, "exit_code": code}))
    return code


def _run(args: argparse.Namespace, func) -> int:
    """Run one command; every way it can end becomes an exit code and at most one line on stderr."""
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


class _Watched:
    """A text stream passed through, remembering whether anything was written and its tail."""

    TAIL = 4096

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.wrote = False
        self._tail = ""

    def write(self, text: str) -> int:
        if text:
            self.wrote = True
            self._tail = (self._tail + text)[-self.TAIL:]
        return self._stream.write(text)

    @property
    def last_line(self) -> str:
        """The last non-blank line; a progress line rewritten with "\\r" counts as its last state."""
        lines = [line.strip() for line in self._tail.replace("\r", "\n").splitlines()]
        return next((line for line in reversed(lines) if line), "")

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _JsonWatch:
    """While a ``--json`` command runs: whether it printed anything on stdout, and the last
    line it said on stderr (the error, when it failed)."""

    def __init__(self) -> None:
        self._stdout, self._stderr = sys.stdout, sys.stderr
        self._out, self._err = _Watched(sys.stdout), _Watched(sys.stderr)
        sys.stdout, sys.stderr = self._out, self._err

    @property
    def wrote_stdout(self) -> bool:
        return self._out.wrote

    @property
    def last_error(self) -> str:
        return self._err.last_line

    def close(self) -> None:
        sys.stdout, sys.stderr = self._stdout, self._stderr


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
