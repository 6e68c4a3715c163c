"""Serve an aiohttp app on a free loopback port for one test."""

from __future__ import annotations

from aiohttp import web


async def serve_on_loopback(app: web.Application, **runner_options) -> tuple[web.AppRunner, str]:
    """Start ``app`` on 127.0.0.1 at a port the OS picks; returns the runner (to clean up) and base URL."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"
