"""Fixtures for the RunPod tests: a running fake API and a client pointed at it."""

from __future__ import annotations

import pytest

from pistachio_tui.runpod.api import RunPodClient
from pistachio_tui.sim.runpod import FakeRunPod


@pytest.fixture
async def fake_runpod():
    """A started ``FakeRunPod`` with the default pods, stopped after the test."""
    async with FakeRunPod() as fake:
        yield fake


@pytest.fixture
async def runpod(fake_runpod):
    """A ``RunPodClient`` with the fake's key, short timeout."""
    async with RunPodClient(fake_runpod.api_key, url=fake_runpod.url, timeout=2.0) as client:
        yield client


@pytest.fixture
def runpod_env(fake_runpod, monkeypatch):
    """Env vars that point the code that reads configuration (the CLI) at the fake."""
    monkeypatch.setenv("RUNPOD_API_URL", fake_runpod.url)
    monkeypatch.setenv("RUNPOD_API_KEY", fake_runpod.api_key)
    return fake_runpod
