"""``pistachio`` with no subcommand (or ``pistachio app``): the full-screen app."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pistachio_tui.cli.exit_codes import USAGE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("app", help="open the full-screen app (the default)",
                                   description="Open Pistachio's full-screen terminal app.")
    parser.set_defaults(func=open_app)


def open_app(args: argparse.Namespace, dashboard: bool = False) -> int:
    """Load the settings and run the app; a broken settings file is reported, not raised."""
    from pistachio_tui.config import ConfigError, load_settings

    try:
        config = getattr(args, "config", None)
        settings = load_settings(Path(config) if config else None)
    except ConfigError as exc:
        print(f"pistachio: {exc}", file=sys.stderr)
        return USAGE
    from pistachio_tui.ui.app import run_app

    return run_app(settings, dashboard=dashboard)
