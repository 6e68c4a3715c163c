"""Replay recorded ComfyUI answers through respx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from tests.conftest import load_fixture

BASE = "http://comfy.test:8188"


def recorded_response(name: str) -> httpx.Response:
    """The recorded ``{"status", "body"}`` answer of a fixture as an httpx response."""
    record = load_fixture(name)
    body = record.get("body")
    if body is None:
        return httpx.Response(record["status"])
    if isinstance(body, str):
        return httpx.Response(record["status"], text=body)
    return httpx.Response(record["status"], json=body)


def json_response(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def replay(router: respx.Router, method: str, path: str, name: str) -> respx.Route:
    """Route ``method path`` to the recorded answer ``name``."""
    return router.route(method=method, url=BASE + path).mock(return_value=recorded_response(name))

