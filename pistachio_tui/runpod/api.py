"""Async client for RunPod's GraphQL API (pods, account, GPU prices).

::

    async with RunPodClient(api_key) as runpod:
        overview = await runpod.overview()      # account + pods, one request
        await runpod.stop_pod(pod.id)

The key is sent as ``Authorization: Bearer``; it is kept out of ``repr``,
exception messages and log records (server-provided text is scrubbed too, in
case a proxy or the API ever echoes it back).
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from pistachio_tui.runpod import queries
from pistachio_tui.runpod.errors import (
    ApiKeyMissing,
    ApiKeyRejected,
    BadResponse,
    ConfirmationMismatch,
    GraphQLError,
    PodNotFound,
    RateLimited,
    RunPodServerError,
    RunPodUnreachable,
)
from pistachio_tui.runpod.models import Account, GpuType, Overview, Pod

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.runpod.io/graphql"
#: GraphQL error texts RunPod uses for a missing, wrong or read-only key.
_AUTH_ERROR = re.compile(r"unauthori[sz]ed|unauthenticated|api key|forbidden|not authenticated|permission", re.I)
_OPERATION = re.compile(r"^\s*(query|mutation)\s+(\w+)")


def api_url() -> str:
    """The GraphQL endpoint: ``$RUNPOD_API_URL`` (tests, proxies) or RunPod's own."""
    return os.environ.get("RUNPOD_API_URL") or DEFAULT_API_URL


def load_api_key() -> str:
    """The configured RunPod key (env var or secrets file), else ``ApiKeyMissing``.

    A secrets file readable by others raises ``pistachio_tui.config.ConfigError``.
    """
    from pistachio_tui import config

    key = config.get_secret("RUNPOD_API_KEY")
    if not key:
        raise ApiKeyMissing(str(config.config_dir() / config.SECRETS_FILE))
    return key


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "nan" and "inf" parse as floats but say nothing usable.
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


class RunPodClient:
    """One connection pool to the RunPod GraphQL API for one API key."""

    def __init__(self, api_key: str, *, url: str | None = None, timeout: float = 15.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not api_key:
            raise ApiKeyMissing()
        # The key travels in the Authorization header only: an old-style
        # ``?api_key=`` in the URL would end up in httpx's request log lines.
        self.url = str(httpx.URL(url or api_url()).copy_remove_param("api_key"))
        self.timeout = timeout
        self._key = api_key
        #: The URL as shown in messages, in case the key hides elsewhere in it.
        self._shown_url = self._scrub(self.url)
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"RunPodClient(url={self._shown_url!r})"

    async def __aenter__(self) -> RunPodClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[RUNPOD_API_KEY]")

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one operation and return its ``data``; every failure is a ``RunPodError``."""
        match = _OPERATION.match(query)
        kind, name = match.groups() if match else ("query", "anonymous")
        body: dict[str, Any] = {"query": query}
        if variables:
            body["variables"] = variables
        started = time.monotonic()
        try:
            response = await self._http.post(self.url, json=body)
        except httpx.TimeoutException:
            raise RunPodUnreachable(
                f"The RunPod API at {self._shown_url} did not answer within {self.timeout:g} s"
                " — check your connection, or try again"
            ) from None
        except httpx.HTTPError as exc:
            reason = self._scrub(str(exc)) or type(exc).__name__
            raise RunPodUnreachable(
                f"Cannot reach the RunPod API at {self._shown_url} — check your internet connection ({reason})"
            ) from None
        log.debug("RunPod %s %s: HTTP %s in %.2f s", kind, name, response.status_code,
                  time.monotonic() - started)
        return self._data(response, kind)

    def _data(self, response: httpx.Response, kind: str) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise ApiKeyRejected()
        if status == 429:
            raise RateLimited(_retry_after(response.headers.get("Retry-After")))
        try:
            payload = response.json()
        except ValueError:
            payload = None
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if errors:
            self._raise_graphql(errors, kind)
        if status >= 400:
            raise RunPodServerError(
                f"The RunPod API answered HTTP {status} — RunPod may be having trouble; try again shortly",
                status=status,
            )
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            raise BadResponse(f"The RunPod API at {self._shown_url} answered something that is not GraphQL data")
        return data

    def _raise_graphql(self, errors: Any, kind: str) -> None:
        items = errors if isinstance(errors, list) else [errors]
        messages = [
            self._scrub(str(e.get("message") if isinstance(e, dict) else e)) for e in items
        ]
        if any(_AUTH_ERROR.search(m) for m in messages):
            hint = " (it needs read/write access to start or stop pods)" if kind == "mutation" else ""
            raise ApiKeyRejected(hint)
        raise GraphQLError(messages)

    @staticmethod
    def _myself(data: dict[str, Any]) -> dict[str, Any]:
        myself = data.get("myself")
        if not isinstance(myself, dict):
            raise BadResponse("RunPod answered without the account ('myself') — is the key valid?")
        return myself

    async def pods(self) -> list[Pod]:
        """Every pod of the account, in RunPod's order."""
        myself = self._myself(await self.execute(queries.PODS))
        return [Pod.from_wire(p) for p in myself.get("pods") or []]

    async def pod(self, pod_id: str) -> Pod:
        """One pod by id; ``PodNotFound`` when the account has none with that id."""
        for pod in await self.pods():
            if pod.id == pod_id:
                return pod
        raise PodNotFound(pod_id)

    async def account(self) -> Account:
        """Balance, current spend per hour and spend limit."""
        return Account.from_wire(self._myself(await self.execute(queries.ACCOUNT)))

    async def overview(self) -> Overview:
        """Account and pods in one request — what a refreshing screen should poll."""
        myself = self._myself(await self.execute(queries.OVERVIEW))
        return Overview(Account.from_wire(myself), [Pod.from_wire(p) for p in myself.get("pods") or []])

    async def gpu_types(self) -> list[GpuType]:
        """Every GPU type with its $/h prices (one GPU), cheapest on-demand first."""
        data = await self.execute(queries.GPU_TYPES)
        raw = data.get("gpuTypes")
        if not isinstance(raw, list):
            raise BadResponse("RunPod answered without a GPU type list")
        types = [GpuType.from_wire(t) for t in raw]
        return sorted(types, key=lambda t: (t.on_demand_price is None, t.on_demand_price or 0.0, t.display_name))

    async def start_pod(self, pod_id: str, gpu_count: int = 1) -> str:
        """Resume a stopped pod with ``gpu_count`` GPUs; returns the new desired status."""
        data = await self.execute(queries.POD_RESUME, {"input": {"podId": pod_id, "gpuCount": gpu_count}})
        return self._desired_status(data, "podResume")

    async def stop_pod(self, pod_id: str) -> str:
        """Stop a pod (its volume is kept, billing for GPUs ends); returns the new desired status."""
        data = await self.execute(queries.POD_STOP, {"input": {"podId": pod_id}})
        return self._desired_status(data, "podStop")

    async def terminate_pod(self, pod_id: str, *, confirm_name: str) -> Pod:
        """Delete a pod and its volume for good, only if ``confirm_name`` is its exact name.

        The name must come from the user (typed, not copied by code): it is the
        one guard against terminating the wrong pod. A pod without a name is
        confirmed by its id. Returns the pod as it was.
        """
        pod = await self.pod(pod_id)
        expected = pod.name or pod.id
        if confirm_name != expected:
            raise ConfirmationMismatch(pod.id, expected)
        await self.execute(queries.POD_TERMINATE, {"input": {"podId": pod.id}})
        return pod

    @staticmethod
    def _desired_status(data: dict[str, Any], field: str) -> str:
        result = data.get(field)
        if not isinstance(result, dict):
            raise BadResponse(f"RunPod answered {field} without the pod")
        return str(result.get("desiredStatus") or "")
