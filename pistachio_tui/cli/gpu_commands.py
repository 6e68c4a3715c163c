"""``pistachio gpu``: one reading of this machine's GPUs and of ComfyUI servers' VRAM.

::

    pistachio gpu [--server URL|NAME]... [--json]

Without ``--server`` every configured server is read. A machine without an
NVIDIA driver prints the notice and still reads the servers. Exit codes: a
server that cannot be reached → UNREACHABLE, a broken settings file → USAGE.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from pistachio_tui.cli import exit_codes
from pistachio_tui.format import gib

if TYPE_CHECKING:
    from pistachio_tui.config import ServerConfig
    from pistachio_tui.gpu.hub import HubSnapshot
    from pistachio_tui.gpu.nvml import NvmlReader
    from pistachio_tui.gpu.source import GpuSource


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gpu",
        help="VRAM, utilisation, temperature and power of local GPUs and ComfyUI servers",
        description="One reading of this machine's NVIDIA GPUs (NVML) and of ComfyUI servers (/system_stats).",
    )
    parser.add_argument("--server", action="append", metavar="URL|NAME",
                        help="a ComfyUI server to read (repeatable; default: every configured server)")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.set_defaults(func=run_gpu)


def _servers(args: argparse.Namespace) -> list[ServerConfig]:
    from pathlib import Path

    from pistachio_tui.config import ServerConfig, load_settings

    settings = load_settings(Path(args.config) if getattr(args, "config", None) else None)
    if not args.server:
        return list(settings.servers)
    chosen = []
    for wanted in args.server:
        server = settings.server(wanted)
        if server is None:
            url = exit_codes.server_url(wanted)
            server = ServerConfig(name=url, url=url)
        chosen.append(server)
    return chosen


async def run_gpu(args: argparse.Namespace, *, reader: NvmlReader | None = None) -> int:
    """Sample everything once and print it; ``reader`` replaces real NVML (tests)."""
    from contextlib import AsyncExitStack

    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.config import ConfigError
    from pistachio_tui.gpu.hub import GpuHub

    try:
        servers = _servers(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return exit_codes.USAGE
    hub = GpuHub()
    hub.add_local(reader)
    async with AsyncExitStack() as stack:
        for server in servers:
            client = await stack.enter_async_context(ComfyClient(server.url, headers=dict(server.headers)))
            hub.add_server(server.name, client.system_stats)
        try:
            await hub.sample_once()
        finally:
            await hub.aclose()
    snap = hub.snapshot()
    if args.json:
        print(json.dumps(_as_json(snap, servers), indent=2))
    else:
        _print_human(snap, servers)
    return exit_codes.OK if all(s.up for s in snap.servers) else exit_codes.UNREACHABLE


def _devices(snap: HubSnapshot, kind: str, prefix: str = "") -> list[GpuSource]:
    return [s for s in snap.sources if s.kind == kind and s.key.startswith(prefix)]


def _as_json(snap: HubSnapshot, servers: list[ServerConfig]) -> dict[str, Any]:
    urls = {s.name: s.url for s in servers}
    return {
        "local": {
            "available": snap.local_unavailable is None,
            "reason": snap.local_unavailable,
            "gpus": [s.to_dict() for s in _devices(snap, "local")],
        },
        "servers": [
            {
                "name": state.name, "url": urls.get(state.name), "up": state.up, "reason": state.reason,
                "ram_used": state.ram.last() if state.up else None, "ram_total": state.ram_total,
                "devices": [s.to_dict() for s in _devices(snap, "server", f"server:{state.name}:")],
            }
            for state in snap.servers
        ],
    }


def _line(source: GpuSource) -> str:
    parts = [f"{source.memory_name} {gib(source.memory_used)}/{gib(source.memory_total)}"]
    if source.memory_fraction is not None:
        parts[0] += f" ({source.memory_fraction:.0%})"
    if source.torch_used is not None:
        parts.append(f"torch {gib(source.torch_used)}/{gib(source.torch_total)}")
    if source.util_percent is not None:
        parts.append(f"util {source.util_percent:.0f}%")
    if source.temperature_c is not None:
        parts.append(f"{source.temperature_c:.0f}°C")
    if source.power_w is not None:
        limit = f"/{source.power_limit_w:.0f}" if source.power_limit_w is not None else ""
        parts.append(f"{source.power_w:.0f}{limit} W")
    if source.fan_percent is not None:
        parts.append(f"fan {source.fan_percent:.0f}%")
    if source.level.value != "ok":
        parts.append(source.level.value.upper())
    return f"  {source.label}: " + "  ".join(parts)


def _print_human(snap: HubSnapshot, servers: list[ServerConfig]) -> None:
    print("This machine")
    if snap.local_unavailable is not None:
        print(f"  {snap.local_unavailable}")
    for source in _devices(snap, "local"):
        print(_line(source))
        for p in source.processes:
            print(f"    pid {p.pid} {p.name or '(hidden)'} {gib(p.used_bytes)}")
    urls = {s.name: s.url for s in servers}
    for state in snap.servers:
        url = urls.get(state.name)
        print(f"\nServer {state.name}" + (f" ({url})" if url and url != state.name else ""))
        if not state.up:
            print(f"  {state.reason}")
            continue
        for source in _devices(snap, "server", f"server:{state.name}:"):
            print(_line(source))
        print(f"  RAM {gib(state.ram.last())}/{gib(state.ram_total)}")
    if not servers:
        print("\nNo ComfyUI servers configured (add one, or pass --server URL).")
