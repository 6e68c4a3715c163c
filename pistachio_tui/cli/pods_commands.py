"""``pistachio pods``: RunPod pods and GPU prices from the command line.

::

    pistachio pods [--json]                    # pods with $/h, spend, GPU use; account $/h
    pistachio pods start ID [--gpus N]
    pistachio pods stop ID
    pistachio pods terminate ID --confirm NAME # refuses unless NAME is the pod's name
    pistachio pods gpus [--json]               # GPU types and prices
    pistachio pods create --template ID --gpu TYPE [--gpus N] [--volume ID] [--name NAME] [--yes] [--add-server]
    pistachio pods logs ID [--tail N]          # the pod's last log lines (container and system)
    pistachio pods comfy ID [--add]           # find the pod's ComfyUI (probes its HTTP ports); add it as a server
    pistachio pods guard [--idle-minutes N] [--pod ID ...|--self] [--countdown S] [--once] [--json]
                                               # stop idle pods, headless (on the pod, or anywhere)

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
from pistachio_tui.format import duration, money, percent

SPEND_NOTE = "spend ≈ $/h × uptime since the last start (an estimate; a running pod's storage is not included)"


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
    start.add_argument("--bid", type=exit_codes.positive_number, metavar="USD",
                       help="spot pods: bid per GPU in $/h (default: RunPod's lowest bid to resume)")
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

    create = actions.add_parser("create", help="create an on-demand pod from a template (price and stock first)")
    create.add_argument("--template", required=True, metavar="ID", help="RunPod template id (image, ports, volume)")
    create.add_argument("--gpu", required=True, metavar="TYPE", help="GPU type id or name, e.g. 'RTX 4090'")
    create.add_argument("--gpus", type=int, default=1, metavar="N", help="GPU count (default 1)")
    create.add_argument("--volume", metavar="ID", help="a network volume to mount instead of the template's own")
    create.add_argument("--name", help="pod name (default: the template's name)")
    create.add_argument("--cloud", choices=("SECURE", "COMMUNITY"), help="cloud tier (RunPod's default: SECURE)")
    create.add_argument("--spot", action="store_true", help="a spot (interruptible) pod: not offered by the API yet")
    create.add_argument("--yes", action="store_true", help="do not ask before creating (it bills from now on)")
    create.add_argument("--add-server", action="store_true",
                        help="wait for its ComfyUI to answer and add it to the servers list")
    create.add_argument("--wait", type=exit_codes.positive_number, default=20.0, metavar="MINUTES", help="how long --add-server waits")
    create.set_defaults(func=run_create)

    logs = actions.add_parser("logs", help="a pod's last log lines: why ComfyUI is not up yet")
    logs.add_argument("pod_id", metavar="ID")
    logs.add_argument("--tail", type=int, default=100, metavar="N", help="how many lines (at most 5000)")
    logs.set_defaults(func=run_logs)

    comfy = actions.add_parser("comfy", help="find a pod's ComfyUI by probing its HTTP ports")
    comfy.add_argument("pod_id", metavar="ID")
    comfy.add_argument("--add", action="store_true", help="add it to the servers list when it answers")
    comfy.set_defaults(func=run_comfy)

    guard = actions.add_parser(
        "guard", help="stop idle pods after a countdown (never terminates), without the TUI",
        description="Polls RunPod and stops pods that stay idle (busiest GPU, container CPU and the ComfyUI "
                    "queue all quiet) for --idle-minutes, after a --countdown. Logs each decision. Run it on "
                    "the pod itself with --self (RunPod sets RUNPOD_POD_ID), or anywhere with --pod.")
    guard.add_argument("--idle-minutes", type=exit_codes.non_negative_number, default=30.0, help="idle time before a pod is flagged")
    guard.add_argument("--countdown", type=exit_codes.non_negative_number, default=300.0, metavar="SECONDS",
                       help="time between the flag and the stop (Ctrl-C to cancel)")
    which = guard.add_mutually_exclusive_group()
    which.add_argument("--pod", action="append", metavar="ID", help="guard this pod (repeatable; default: all)")
    which.add_argument("--self", dest="this_pod", action="store_true", help="guard the pod this runs on")
    guard.add_argument("--interval", type=exit_codes.positive_number, default=30.0, metavar="SECONDS", help="time between polls")
    guard.add_argument("--once", action="store_true", help="poll once and exit (for cron and tests)")
    guard.add_argument("--json", action="store_true", help="log decisions as JSON lines")
    guard.set_defaults(func=run_guard)


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


async def run_list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from pistachio_tui.runpod.pods import current_pod_id, money_warnings, short_gpu_name, summarize

    async def action(client) -> int:
        overview = await client.overview()
        this_pod = current_pod_id()
        rows = summarize(overview.pods, this_pod)
        account = overview.account
        warnings = money_warnings(account, overview.pods)
        if args.json:
            print(json.dumps({
                "account": {**asdict(account), "hours_left": account.hours_left},
                "this_pod": this_pod,
                "pods": [r.to_json() for r in rows],
                "warnings": warnings,
                "note": SPEND_NOTE,
            }, indent=2))
            return exit_codes.OK
        if rows:
            print(_table(
                ["", "NAME", "ID", "GPU", "STATUS", "UPTIME", "$/H", "SPEND≈", "GPU%"],
                [["*" if r.is_this_pod else "", r.name, r.id,
                  f"{r.gpu_count}× {short_gpu_name(r.gpu)}" if r.gpu else "—",
                  r.status, r.uptime, money(r.cost_per_hr, 3), money(r.spend_estimate),
                  percent(r.gpu_util_percent)] for r in rows],
                right={5, 6, 7, 8},
            ))
        else:
            print("No pods in this RunPod account.")
        left = f" (≈ {duration(account.hours_left * 3600)} left)" if account.hours_left is not None else ""
        print(f"\nAccount: {money(account.current_spend_per_hr, 3)}/h now · "
              f"balance {money(account.client_balance)}{left}")
        if this_pod:
            print("* = this pod (Pistachio runs on it)")
        for warning in warnings:
            _say(f"warning: {warning}")
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
            [[short_gpu_name(t.display_name), f"{t.memory_in_gb} GB", money(t.on_demand_price, 3),
              money(t.spot_price, 3), clouds.get((t.secure_cloud, t.community_cloud), "unavailable"), t.id]
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
        price = f" at about {money(pod.cost_per_hr, 3)}/h" if pod.cost_per_hr else ""
        _say(f"Starting {pod.name} ({pod.id}) with {gpus} GPU(s){price}…")
        status = await client.start_pod(pod.id, gpus, bid_per_gpu=args.bid)
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


async def run_create(args: argparse.Namespace) -> int:
    from pistachio_tui.runpod.pods import short_gpu_name

    if args.spot:
        _say("error: RunPod's REST API creates on-demand pods only; create a spot pod in the console, "
             "then `pistachio pods start ID --bid X` resumes it with a bid")
        return exit_codes.USAGE

    async def action(client) -> int:
        offer = await client.gpu_offer(args.gpu, args.gpus)
        price = offer.secure_price if args.cloud != "COMMUNITY" else offer.community_price
        stock = offer.availability or "unknown"
        per_hr = f"{money(price * args.gpus, 3)}/h" if price else "price unknown"
        print(f"{args.gpus}× {short_gpu_name(offer.display_name)} ({offer.memory_in_gb} GB): {per_hr} "
              f"({args.cloud or 'SECURE'} cloud), stock {stock}; template {args.template}")
        if stock == "NONE":
            _say("error: none in stock right now; try another GPU type or cloud, or later")
            return exit_codes.REJECTED
        if not args.yes:
            if not sys.stdin.isatty():
                _say("error: not a terminal: pass --yes to create the pod (it bills from now on)")
                return exit_codes.USAGE
            if input("Create it? It bills from now on [y/N] ").strip().lower() not in ("y", "yes"):
                _say("not created")
                return exit_codes.OK
        pod = await client.create_pod(name=args.name or f"pistachio-{args.template}", template_id=args.template,
                                      gpu_type=offer.id, gpu_count=args.gpus, network_volume=args.volume,
                                      cloud=args.cloud)
        print(f"{pod.name} ({pod.id}): {pod.status}")
        if not args.add_server:
            _say(f"`pistachio pods comfy {pod.id} --add` adds its ComfyUI once it answers")
            return exit_codes.OK
        return await _wait_and_add(client, pod.id, args.wait * 60)

    return await _with_client(action, getattr(args, "json", False))


async def _wait_and_add(client, pod_id: str, patience_s: float) -> int:
    """Poll a new pod until its ComfyUI answers, then add it to the servers list."""
    import asyncio
    import time

    import httpx

    from pistachio_tui.runpod.pods import current_pod_id, find_comfy

    deadline = time.monotonic() + patience_s
    async with httpx.AsyncClient() as http:
        while True:
            found = await find_comfy(await client.pod(pod_id), http, current_pod_id())
            if found.url is not None:
                _add_server(found.url, pod_id)
                print(found.url)
                return exit_codes.OK
            if time.monotonic() >= deadline:
                _say(f"gave up waiting: {found.reason}")
                return exit_codes.UNREACHABLE
            _say(f"waiting: {found.reason}")
            await asyncio.sleep(min(15.0, max(deadline - time.monotonic(), 0.0)))


def _add_server(url: str, name: str) -> None:
    from pistachio_tui.config import ServerConfig, load_settings, save_settings

    settings = load_settings()
    if settings.server(url) is None:
        settings.servers.append(ServerConfig(name=f"{name} (RunPod)", url=url))
        save_settings(settings)
        _say(f"added {url} to the servers list")


async def run_logs(args: argparse.Namespace) -> int:
    async def action(client) -> int:
        for entry in await client.pod_logs(args.pod_id, tail=max(1, min(args.tail, 5000))):
            print(f"{entry.ts} {entry.source:<9} {entry.line}")
        return exit_codes.OK

    return await _with_client(action, getattr(args, "json", False))


async def run_comfy(args: argparse.Namespace) -> int:
    import httpx

    from pistachio_tui.runpod.pods import comfy_ports, current_pod_id, find_comfy

    async def action(client) -> int:
        pod = await client.pod(args.pod_id)
        _say(f"Probing {pod.name or pod.id} on port(s) {', '.join(map(str, comfy_ports(pod)))}…")
        async with httpx.AsyncClient() as http:
            found = await find_comfy(pod, http, current_pod_id())
        if found.url is None:
            print(f"{pod.name or pod.id} ({pod.id}): {found.reason}")
            if found.not_up_yet:
                _say(f"`pistachio pods logs {pod.id}` shows what the pod is doing")
            return exit_codes.UNREACHABLE
        print(found.url)
        if args.add:
            _add_server(found.url, pod.name or pod.id)
        return exit_codes.OK

    return await _with_client(action, getattr(args, "json", False))


async def run_guard(args: argparse.Namespace) -> int:
    """The idle guard of the TUI (``PodsMonitor`` + ``IdleGuard``), headless, logging each decision."""
    import asyncio
    import time

    import httpx

    from pistachio_tui.runpod.idle import ActivityResumed, CountdownStarted, IdleFlagged, IdleGuard, StopNow
    from pistachio_tui.runpod.monitor import PodsMonitor
    from pistachio_tui.runpod.pods import current_pod_id

    watch = args.pod
    if args.this_pod:
        this_pod = current_pod_id()
        if this_pod is None:
            _say("error: --self needs RUNPOD_POD_ID (set by RunPod inside a pod); use --pod ID elsewhere")
            return exit_codes.USAGE
        watch = [this_pod]

    def log(event: str, pod_id: str | None, message: str, **extra: Any) -> None:
        if args.json:
            print(json.dumps({"time": time.time(), "event": event, "pod": pod_id, "message": message, **extra}),
                  flush=True)
        else:
            print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {event:<9} {pod_id or '-':<14} {message}", flush=True)

    async def action(client) -> int:
        from pistachio_tui.runpod.errors import RunPodError

        guard = IdleGuard(idle_minutes=args.idle_minutes, auto_stop=True, countdown_seconds=args.countdown)
        async with httpx.AsyncClient() as comfy_http:
            monitor = PodsMonitor(client, guard=guard, comfy_http=comfy_http, watch=watch)
            scope = ", ".join(watch) if watch else "every pod"
            log("start", None, f"guarding {scope}: stop after {args.idle_minutes:g} min idle "
                               f"+ {args.countdown:g} s countdown (never terminate)")
            while True:
                try:
                    state = await monitor.refresh()
                except RunPodError as exc:
                    if args.once:
                        raise
                    log("error", None, f"{exc.message}; retrying in {args.interval:g} s")
                else:
                    names = {p.id: p.name or p.id for p in state.pods}
                    for act in state.actions:
                        name = names.get(act.pod_id, act.pod_id)
                        if isinstance(act, IdleFlagged):
                            what = "starting (no container yet)" if act.reason == "starting" else "idle"
                            log("flagged", act.pod_id, f"{name} {what} for {duration(act.idle_seconds)}, "
                                                       f"≈ {money(act.idle_cost)} meanwhile", reason=act.reason)
                        elif isinstance(act, CountdownStarted):
                            left = max(act.stop_at - time.monotonic(), 0.0)
                            log("countdown", act.pod_id, f"{name} stops in {duration(left)} unless it gets busy")
                        elif isinstance(act, ActivityResumed):
                            log("busy", act.pod_id, f"{name} is busy again: countdown cancelled")
                        elif isinstance(act, StopNow) and act.pod_id in state.stopped:
                            log("stopped", act.pod_id, f"{name} stopped after {duration(act.idle_seconds)} "
                                                       "idle; its volume is kept")
                    for pod_id, why in state.stop_errors.items():
                        log("error", pod_id, f"could not stop {names.get(pod_id, pod_id)}: {why}; will retry")
                if args.once:
                    return exit_codes.OK
                await asyncio.sleep(args.interval)

    try:
        return await _with_client(action, getattr(args, "json", False))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("exit", None, "guard stopped by the user; no countdown carried out")
        return exit_codes.OK
