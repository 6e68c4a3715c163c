"""What every RunPod HTTP call shares: who gets the key, the User-Agent, Retry-After, backoff.

The API key is attached per request by :class:`RunPodAuth`, and only when the
request goes to a RunPod API origin (or the one origin the caller configured,
for tests and proxies). Anything else — a presigned S3 URL in a job's output,
a redirect to another host — gets no ``Authorization`` at all: a bucket that
receives one answers 400 "Only one auth mechanism allowed", and the key would
have left RunPod.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, Iterable
from email.utils import parsedate_to_datetime

import httpx

from pistachio_tui import __version__

USER_AGENT = f"pistachio-tui/{__version__} (+python-httpx/{httpx.__version__})"

#: The hosts RunPod serves its APIs from: serverless (``api.runpod.ai``), GraphQL and REST.
RUNPOD_API_HOSTS = frozenset({"api.runpod.ai", "api.runpod.io", "rest.runpod.io"})

#: Longest wait a Retry-After header may impose; a server asking for more is waited on in steps.
RETRY_AFTER_CAP_S = 120.0


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


class RunPodAuth(httpx.Auth):
    """``Authorization: Bearer`` for RunPod's API hosts over https and the ``extra_origins`` given.

    An origin is scheme, host and port: a fake bucket on another port of the
    same loopback address is another origin, as a real bucket is another host.
    """

    def __init__(self, api_key: str, extra_origins: Iterable[str] = ()) -> None:
        self._header = f"Bearer {api_key}"
        self._origins = {_origin(httpx.URL(url)) for url in extra_origins}

    def __repr__(self) -> str:  # never show the key
        return "RunPodAuth(...)"

    def allows(self, url: httpx.URL) -> bool:
        """True when a request to ``url`` may carry the key."""
        if url.scheme == "https" and url.host in RUNPOD_API_HOSTS and url.port in (None, 443):
            return True
        return _origin(url) in self._origins

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self.allows(request.url):
            request.headers["Authorization"] = self._header
        else:
            request.headers.pop("Authorization", None)
        yield request


def retry_after_s(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), else None.

    Garbage, negative, infinite and NaN values are None (the caller backs off on
    its own), and a huge value is capped at :data:`RETRY_AFTER_CAP_S`.
    """
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = max(seconds, 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, RETRY_AFTER_CAP_S)


def backoff_s(attempt: int, *, base: float, cap: float) -> float:
    """Exponential backoff: ``base`` doubled per failed attempt (0-based), at most ``cap``."""
    return min(cap, base * (2 ** min(attempt, 16)))
