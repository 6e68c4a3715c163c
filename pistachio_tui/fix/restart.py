"""Restart a ComfyUI server through its Manager and wait until it answers again.

The Manager restarts ComfyUI by ``os.execv`` (or, under comfy-cli, by exiting
for the launcher to start it again): the listening socket closes, the server is
unreachable while it loads its nodes again (seconds at least: torch is
imported first), then answers again. Coming back is recognised by having been
seen down, or by the expected node classes appearing. The log cannot tell: it
is a bounded buffer, whose first entry also changes when it rolls over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import ComfyError, ServerUnreachable
from pistachio_tui.fix.manager import ManagerClient, ManagerError

#: The first polls after the reboot request come quickly, so a fast restart is noticed at once.
FIRST_POLL = 0.1


async def _classes_loaded(client: ComfyClient, classes: list[str]) -> bool:
    if not classes:
        return False
    try:
        info = await client.object_info(refresh=True)
    except ComfyError:
        return False
    return all(c in info for c in classes)


async def restart_server(client: ComfyClient, manager: ManagerClient, *, timeout: float = 600.0,
                         poll_interval: float = 1.0, expect_classes: list[str] | None = None,
                         on_wait: Callable[[float], None] | None = None) -> float:
    """Reboot through ``manager`` and wait for the server; returns the seconds it took.

    Raises :class:`ManagerError` at once when the Manager refuses (nothing was
    restarted), :class:`ServerUnreachable` when the server is not back within
    ``timeout`` seconds.
    """
    if await manager.detect() is None:
        raise ManagerError(f"No ComfyUI-Manager at {client.shown_url}: restart ComfyUI by hand.")
    await manager.reboot()
    started = time.monotonic()
    seen_down = False
    polls = 0
    while True:
        elapsed = time.monotonic() - started
        try:
            await client.system_stats()
        except ComfyError:
            seen_down = True
        else:
            if seen_down or await _classes_loaded(client, expect_classes or []):
                break
        if elapsed > timeout:
            raise ServerUnreachable(
                f"ComfyUI at {client.shown_url} did not come back within {timeout / 60:.0f} min after the "
                "restart — check its console or pod logs (a custom node's install script may still be running).")
        if on_wait is not None:
            on_wait(elapsed)
        await asyncio.sleep(min(poll_interval, FIRST_POLL * 2**polls))
        polls += 1
    client.invalidate_object_info()
    return time.monotonic() - started
