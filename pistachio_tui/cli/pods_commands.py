"""``pistachio pods``: RunPod pods and GPU prices from the command line.

::

    pistachio pods [--json]                    # pods with $/h, spend, GPU use; account $/h
    pistachio pods start ID [--gpus N]
    pistachio pods stop ID
    pistachio pods terminate ID --confirm NAME # refuses unless NAME is the pod's name
    pistachio pods gpus [--json]               # GPU types and prices

Exit codes: bad or missing key → USAGE, RunPod unreachable / rate limited /
failing → UNREACHABLE, request refused (unknown pod…) → REJECTED.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from pistachio_tui.cli import exit_codes

SPEND_NOTE = "spend ≈ $/h × uptime since the last start (an estimate; storage not included)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pods",
        help="RunPod pods: list with cost, start, stop, terminate, GPU prices",
        description="Your RunPod pods with their cost. Needs RUNPOD_API_KEY (env or secrets.toml).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.set_defaults(func=run_list)
    actions = parser.add_subparsers(dest="pods_action", metavar="ACTION")

    listing = actions.add_parser("list", help="list pods (the default)")
    listing.add_argument("--json", action="store_true", help="print JSON on stdout")
    listing.set_defaults(func=run_list)

    start = actions.add_parser("start", help="start (resume) a stopped pod")
    start.add_argument("pod_id", metavar="ID")
    start.add_argument("--gpus", type=int, help="GPUs to attach (default: the pod's own count)")
    start.set_defaults(func=run_start)

    stop = actions.add_parser("stop", help="stop a pod (keeps its volume, ends GPU billing)")
    stop.add_argument("pod_id", metavar="ID")
    stop.set_defaults(func=run_stop)

    terminate = actions.add_parser("terminate", help="delete a pod and its volume for good")
    terminate.add_argument("pod_id", metavar="ID")
    terminate.add_argument("--confirm", required=True, metavar="NAME",
                           help="the pod's name, typed out, to prove you mean it")
    terminate.set_defaults(func=run_terminate)

    gpus = actions.add_parser("gpus", help="GPU types and their $/h")
    gpus.add_argument("--json", action="store_true", help="print JSON on stdout")
    gpus.set_defaults(func=run_gpus)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _exit_code(exc: Exception) -> int:
    from pistachio_tui.runpod import errors

    if isinstance(exc, (errors.ApiKeyMissing, errors.ApiKeyRejected, errors.ConfirmationMismatch)):
        return exit_codes.USAGE
    if isinstance(exc, (errors.RunPodUnreachable, errors.RateLimited, errors.RunPodServerError)):
        return exit_codes.UNREACHABLE
    if isinstance(exc, (errors.PodNotFound, errors.GraphQLError)):
        return exit_codes.REJECTED
    return exit_codes.FAILED


async def _with_client(action: Callable[[Any], Awaitable[int]], json_output: bool = False) -> int:
    """Run ``action(client)`` with the configured key; RunPod failures become exit codes
    (and, with ``--json``, a JSON error object on stdout, so scripts always get JSON)."""
    from pistachio_tui.config import ConfigError
    from pistachio_tui.runpod.api import RunPodClient, load_api_key
    from pistachio_tui.runpod.errors import RunPodError

    def fail(message: str, code: int) -> int:
        _say(f"error: {message}")
        if json_output:
            print(json.dumps({"error": message, "exit_code": code}))
        return code

    try:
        key = load_api_key()
    except ConfigError as exc:
        return fail(str(exc), exit_codes.USAGE)
    except RunPodError as exc:
        return fail(exc.message, _exit_code(exc))
    try:
        async with RunPodClient(key) as client:
            return await action(client)
    except RunPodError as exc:
        return fail(exc.message, _exit_code(exc))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def _money(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"${value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


async def run_list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from pistachio_tui.runpod.pods import current_pod_id, short_gpu_name, summarize

    async def action(client) -> int:
        overview = await client.overview()
        this_pod = current_pod_id()
        rows = summarize(overview.pods, this_pod)
        account = overview.account
        if args.json:
            print(json.dumps({
                "account": {**asdict(account), "hours_left": account.hours_left},
                "this_pod": this_pod,
                "pods": [r.to_json() for r in rows],
                "note": SPEND_NOTE,
            }, indent=2))
            return exit_codes.OK
        if rows:
            print(_table(
                ["", "NAME", "ID", "GPU", "STATUS", "UPTIME", "$/H", "SPEND≈", "GPU%"],
                [["*" if r.is_this_pod else "", r.name, r.id,
                  f"{r.gpu_count}× {short_gpu_name(r.gpu)}" if r.gpu else "—",
                  r.status, r.uptime, _money(r.cost_per_hr, 3), _money(r.spend_estimate),
                  _percent(r.gpu_util_percent)] for r in rows],
                right={5, 6, 7, 8},
            ))
        else:
            print("No pods in this RunPod account.")
        left = f" (≈ {account.hours_left:.1f} h left)" if account.hours_left is not None else ""
        print(f"\nAccount: {_money(account.current_spend_per_hr, 3)}/h now · "
              f"balance {_money(account.client_balance)}{left}")
        if this_pod:
            print("* = this pod (Pistachio runs on it)")
        _say(SPEND_NOTE)
        return exit_codes.OK

    return await _with_client(action, getattr(args, "json", False))


async def run_gpus(args: argparse.Namespace) -> int:
    from pistachio_tui.runpod.pods import short_gpu_name

    async def action(client) -> int:
        types = await client.gpu_types()
        if args.json:
            print(json.dumps([{
                "id": t.id, "display_name": t.display_name, "memory_in_gb": t.memory_in_gb,
                "on_demand_per_hr": t.on_demand_price, "spot_per_hr": t.spot_price,
                "secure_cloud": t.secure_cloud, "community_cloud": t.community_cloud,
            } for t in types], indent=2))
            return exit_codes.OK
        clouds = {(True, True): "secure+community", (True, False): "secure", (False, True): "community"}
        print(_table(
            ["GPU", "VRAM", "ON-DEMAND $/H", "SPOT $/H", "CLOUD", "ID"],
            [[short_gpu_name(t.display_name), f"{t.memory_in_gb} GB", _money(t.on_demand_price, 3),
              _money(t.spot_price, 3), clouds.get((t.secure_cloud, t.community_cloud), "unavailable"), t.id]
             for t in types],
            right={1, 2, 3},
        ))
        _say("prices are per GPU, cheapest offer; they change with availability")
        return exit_codes.OK

    return await _with_client(action, getattr(args, "json", False))


async def run_start(args: argparse.Namespace) -> int:
    async def action(client) -> int:
        pod = await client.pod(args.pod_id)
        if pod.is_running:
            print(f"{pod.name} ({pod.id}) is already running")
            return exit_codes.OK
        gpus = args.gpus if args.gpus is not None else max(pod.gpu_count, 1)
        _say(f"Starting {pod.name} ({pod.id}) with {gpus} GPU(s) at about ${pod.cost_per_hr:.3f}/h…")
        status = await client.start_pod(pod.id, gpus)
        print(f"{pod.name} ({pod.id}): {status.lower() or 'start requested'}")
        return exit_codes.OK

    return await _with_client(action, getattr(args, "json", False))


async def run_stop(args: argparse.Namespace) -> int:
    from pistachio_tui.runpod.pods import current_pod_id

    async def action(client) -> int:
        pod = await client.pod(args.pod_id)
        if not pod.is_running:
            print(f"{pod.name} ({pod.id}) is already {pod.status}")
            return exit_codes.OK
        if pod.id == current_pod_id():
            _say("note: this is the pod Pistachio runs on; this session ends when it stops")
        _say(f"Stopping {pod.name} ({pod.id}); its volume is kept…")
        status = await client.stop_pod(pod.id)
        print(f"{pod.name} ({pod.id}): {status.lower() or 'stop requested'}")
        return exit_codes.OK

    return await _with_client(action, getattr(args, "json", False))


async def run_terminate(args: argparse.Namespace) -> int:
    async def action(client) -> int:
        pod = await client.terminate_pod(args.pod_id, confirm_name=args.confirm)
        print(f"{pod.name or pod.id} ({pod.id}): terminated — the pod and its volume are gone")
        return exit_codes.OK

    return await _with_client(action, getattr(args, "json", False))
