"""``python -m pistachio_tui.sim``: run the simulated ComfyUI on loopback until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pistachio_tui.sim.server import SimServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pistachio_tui.sim",
                                     description="Run a simulated ComfyUI 0.8.0 server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8188, help="port to listen on (0 picks a free one)")
    parser.add_argument("--step-delay", type=float, default=0.05, help="seconds per sampler step")
    parser.add_argument("--manager", action="store_true", help="emulate ComfyUI-Manager v4")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="also list model files found in MODELS_DIR/<folder>/ (and download there)")
    parser.add_argument("--reboot-downtime", type=float, default=3.0,
                        help="seconds the server stays down on a Manager reboot")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    server = SimServer(step_delay=args.step_delay, manager=args.manager, models_dir=args.models_dir,
                       reboot_downtime=args.reboot_downtime)
    url = await server.start("127.0.0.1", args.port)
    print(f"Simulated ComfyUI listening on {url} (Ctrl+C to stop)", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"Cannot listen on 127.0.0.1:{args.port} — {error.strerror or error}. "
              "Pick another port with --port.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
