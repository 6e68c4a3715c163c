"""Shared test fixtures: recorded ComfyUI traces and a running simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES_DIR = Path(__file__).parent / "fixtures" / "comfyui-0.8.0"
ORACLE_DIR = Path(__file__).parent / "fixtures" / "frontend-oracle-1.35.9"


def load_fixture(name: str) -> Any:
    """The parsed JSON of one recorded trace file (``name`` without ``.json``)."""
    return json.loads((FIXTURES_DIR / f"{name}.json").read_text())


@pytest.fixture
def fixture_json():
    return load_fixture


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory, monkeypatch):
    """Every test gets its own settings file and data folder, and no secrets from the developer's shell."""
    home = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("PISTACHIO_CONFIG_DIR", str(home))
    monkeypatch.setenv("PISTACHIO_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    for var in ("RUNPOD_API_KEY", "HF_TOKEN", "RUNPOD_POD_ID", "RUNPOD_API_URL"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
async def sim():
    """A simulated ComfyUI server on a free loopback port, stopped after the test."""
    from pistachio_tui.sim.server import SimServer

    server = SimServer(step_delay=0.001)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def two_sims():
    """Two simulated ComfyUI servers (a fleet), stopped after the test."""
    from pistachio_tui.sim.server import SimServer

    sims = [SimServer(step_delay=0.001) for _ in range(2)]
    for server in sims:
        await server.start()
    try:
        yield sims
    finally:
        for server in sims:
            await server.stop()
