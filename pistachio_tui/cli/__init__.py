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
        if inspect.isawaitable(result):
            result = asyncio.run(result)
        # Flush here, not at interpreter exit, so a closed pipe is caught below.
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `pistachio ... | head` closed our stdout: not an error worth a traceback.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exit_codes.FAILED
    return exit_codes.OK if result is None else int(result)
