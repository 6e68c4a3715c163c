"""``pistachio dashboard [--demo]``: the compact overview for a tmux pane."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboard", help="compact overview for a tmux pane",
                                   description="Open the compact dashboard (servers, running prompt, VRAM).")
    parser.add_argument("--demo", action="store_true", help="on an embedded simulated ComfyUI server")
    parser.set_defaults(func=run_dashboard)


def run_dashboard(args: argparse.Namespace) -> int:
    if args.demo:
        from pistachio_tui.cli.demo_commands import run_demo

        return run_demo(argparse.Namespace(step_delay=0.15, dashboard=True, no_autorun=False))
    from pistachio_tui.cli.app import open_app

    return open_app(args, dashboard=True)
