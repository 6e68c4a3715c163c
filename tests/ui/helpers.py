"""Shared helpers for the UI tests: an app on given servers, waiting on conditions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pistachio_tui.cli.demo_commands import demo_prompt
from pistachio_tui.comfy.stream import Backoff
from pistachio_tui.config import ServerConfig, Settings
from pistachio_tui.ui.app import PistachioApp
from pistachio_tui.workflow.edit import apply_seed_mode

FAST = Backoff(initial=0.05, cap=0.2, jitter=0)
#: Nothing listens on port 1: a server that is deterministically down.
DEAD_URL = "http://127.0.0.1:1"


def make_app(tmp_path: Path, *servers: tuple[str, str], **kwargs) -> PistachioApp:
    settings = Settings(servers=[ServerConfig(n, u) for n, u in servers], path=tmp_path / "settings.toml")
    return PistachioApp(settings, health_interval=0.1, backoff=FAST, **kwargs)


async def until(pilot, predicate, timeout: float = 10.0) -> None:
    """Let the app run until ``predicate()`` holds (fails the test after ``timeout``)."""
    async def poll() -> None:
        while not predicate():
            await pilot.pause(0.02)
    await asyncio.wait_for(poll(), timeout)


def fresh_prompt(sim, seed: int) -> dict:
    # A new seed each time, or the simulator answers from its cache without running a node.
    prompt = demo_prompt(sim.object_info())
    apply_seed_mode(prompt, "fixed", value=seed)
    return prompt
