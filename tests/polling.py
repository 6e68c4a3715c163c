"""Waiting in a test, without a Pilot, until something the event loop does has happened."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll ``predicate`` every 20 ms until it holds; fails the test (TimeoutError) after ``timeout``."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)
