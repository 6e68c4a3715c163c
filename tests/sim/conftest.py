"""Clients on the simulator shared by the simulator tests."""

from __future__ import annotations

import aiohttp
import httpx
import pytest


@pytest.fixture
async def http(sim):
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as client:
        yield client


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s
