"""``pistachio restart``: restart a ComfyUI server through its ComfyUI-Manager.

::

    pistachio restart [--server URL|NAME] [--timeout MIN] [--json]

Asks the Manager (whichever version the server runs) to restart ComfyUI, waits
until the server answers again and prints how long that took. Exit codes: 0
back, 1 the Manager refused or there is none (the reason is printed at once),
3 the server was unreachable or did not come back in time, 64 bad settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from pistachio_tui.cli import exit_codes


def register(subparsers: argparse._SubParsersAction) -> None:
    restart = subparsers.add_parser(
        "restart", help="restart a ComfyUI server through its Manager and wait until it is back",
        description="Restart ComfyUI through ComfyUI-Manager, wait until the server answers again, "
                    "and print how long it took.")
    restart.add_argument("--server", help="server URL or configured name (default: the first configured server)")
    restart.add_argument("--timeout", type=exit_codes.positive_number, default=10.0, metavar="MIN",
                         help="minutes to wait for the server to come back (default: 10)")
    restart.add_argument("--json", action="store_true", help="print one JSON object")
    restart.set_defaults(func=restart_command)


async def restart_command(args: argparse.Namespace) -> int:
    from pistachio_tui.cli.comfy_commands import resolve_server
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.errors import ComfyError, ServerUnreachable
    from pistachio_tui.config import ConfigError
    from pistachio_tui.fix.manager import ManagerClient, ManagerError
    from pistachio_tui.fix.restart import restart_server

    try:
        url, headers = resolve_server(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return exit_codes.USAGE
    live = sys.stderr.isatty() and not args.json

    def waiting(elapsed: float) -> None:
        if live:
            sys.stderr.write(f"\r\x1b[2Kwaiting for the server… {elapsed:.0f} s")
            sys.stderr.flush()

    def report(ok: bool, code: int, message: str, seconds: float | None = None) -> int:
        if live:
            sys.stderr.write("\r\x1b[2K")
        if args.json:
            print(json.dumps({"server": url, "ok": ok, "seconds": seconds, "message": message}))
        else:
            print(message, file=sys.stdout if ok else sys.stderr)
        return code

    async with ComfyClient(url, headers=headers) as client:
        manager = ManagerClient(client)
        started = time.monotonic()
        try:
            dialect = await manager.detect()
            if dialect is None:
                return report(False, exit_codes.FAILED,
                              f"No ComfyUI-Manager at {client.shown_url}: restart ComfyUI by hand "
                              "(on a pod: restart the pod or its ComfyUI process).")
            if not args.json:
                print(f"Restarting ComfyUI at {client.shown_url} through {dialect.label}…")
            took = await restart_server(client, manager, timeout=args.timeout * 60, on_wait=waiting)
        except ManagerError as exc:
            return report(False, exit_codes.FAILED, exc.message, time.monotonic() - started)
        except ServerUnreachable as exc:
            return report(False, exit_codes.UNREACHABLE, exc.message, time.monotonic() - started)
        except ComfyError as exc:
            return report(False, exit_codes.FAILED, exc.message, time.monotonic() - started)
    return report(True, exit_codes.OK, f"ComfyUI at {client.shown_url} is back after {took:.1f} s.", took)
