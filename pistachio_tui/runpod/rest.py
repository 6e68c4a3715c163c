"""RunPod's REST API v2 (``https://api.runpod.io/v2``): pods, pod actions, the GPU catalog.

Paths, bodies and answers follow RunPod's published v2 OpenAPI document:
``GET /v2/pods`` → ``{"pods": [...]}``, ``GET /v2/pods/{id}``, ``POST
/v2/pods/{id}/action`` with ``{"action": "start"|"stop"|"restart"|"terminate"}``
(200 with the pod, 204 for terminate, 409 when the pod's status does not allow
it), ``GET /v2/catalog/gpus`` → ``{"gpus": [...]}``. Errors are RFC 9457
problem documents ``{"title", "status", "detail", "errors"?}``; a 429 carries
``Retry-After``.

:class:`RestUnavailable` means "this API is not there" (no v2 on that host):
the caller falls back to GraphQL. Every other failure is a real answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx

from pistachio_tui.runpod.errors import (
    ActionNotAllowed,
    ApiKeyRejected,
    BadResponse,
    PodNotFound,
    RateLimited,
    RunPodError,
    RunPodServerError,
    RunPodUnreachable,
)
from pistachio_tui.runpod.http import USER_AGENT, RunPodAuth, retry_after_s

log = logging.getLogger(__name__)

POD_ACTIONS = ("start", "stop", "restart", "terminate")


class RestUnavailable(RunPodError):
    """The host has no REST v2 (404 without a problem document, 501): use GraphQL instead."""


class RestClient:
    """One connection pool to RunPod's REST v2 API. ``base_url`` ends in ``/v2``."""

    def __init__(self, api_key: str, base_url: str, *, timeout: float = 15.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._key = api_key
        self._http = httpx.AsyncClient(
            base_url=self.base_url, auth=RunPodAuth(api_key, extra_origins=[self.base_url]),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"}, timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"RestClient({self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, *, missing: RunPodError | None = None,
                      json: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> Any:
        """One call; the decoded JSON body (None for 204). ``missing`` is raised for a 404 problem
        (the thing asked for does not exist)."""
        started = time.monotonic()
        try:
            response = await self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        log.debug("RunPod REST %s %s: HTTP %s in %.2f s", method, path, response.status_code,
                  time.monotonic() - started)
        if response.status_code == 204:
            return None
        self._raise_for(response, missing)
        try:
            return response.json()
        except ValueError:
            raise BadResponse(f"The RunPod API at {self.base_url} answered something that is not JSON") from None

    def _unreachable(self, exc: httpx.HTTPError) -> RunPodUnreachable:
        if isinstance(exc, httpx.TimeoutException):
            return RunPodUnreachable(f"The RunPod API at {self.base_url} did not answer within {self.timeout:g} s"
                                     " — check your connection, or try again")
        return RunPodUnreachable(f"Cannot reach the RunPod API at {self.base_url} — check your internet "
                                 f"connection ({type(exc).__name__})")

    def _raise_for(self, response: httpx.Response, missing: RunPodError | None) -> None:
        """The typed error of an error answer; nothing for a success."""
        status = response.status_code
        if status < 400:
            return
        problem = {k: self._scrub(v) for k, v in _problem(response).items()}
        detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
        if status in (401, 403):
            raise ApiKeyRejected()
        if status == 429:
            raise RateLimited(retry_after_s(response.headers.get("Retry-After")))
        if status == 404 and missing is not None and problem:
            raise missing
        if status in (404, 405, 501) and not problem:
            raise RestUnavailable(f"RunPod's REST API v2 is not available at {self.base_url} (HTTP {status})")
        if status == 409:
            raise ActionNotAllowed(str(detail))
        if status >= 500:
            said = f" ({detail})" if problem else ""
            raise RunPodServerError(f"The RunPod API answered HTTP {status}{said} — RunPod may be having trouble; "
                                    "try again shortly", status=status)
        errors = problem.get("errors")
        extra = f": {'; '.join(map(str, errors))}" if isinstance(errors, list) and errors else ""
        raise RunPodServerError(f"RunPod refused the request: {detail}{extra}", status=status)

    async def pod_logs(self, pod_id: str, *, tail: int = 200, quiet_s: float = 1.5) -> list[dict[str, Any]]:
        """The last ``tail`` log events of a pod (``GET /v2/pods/{id}/logs``, Server-Sent Events).

        The stream stays open for new lines; this reads the backfill and stops
        once the stream has been quiet for ``quiet_s`` seconds.
        """
        events: list[dict[str, Any]] = []
        path = f"/pods/{_safe(pod_id)}/logs"
        try:
            async with self._http.stream("GET", path, params={"tail": tail},
                                         headers={"Accept": "text/event-stream"}) as response:
                if response.status_code >= 400:
                    await response.aread()
                    self._raise_for(response, PodNotFound(pod_id))
                lines = response.aiter_lines()
                while len(events) < tail:
                    try:
                        line = await asyncio.wait_for(anext(lines), quiet_s)
                    except (TimeoutError, StopAsyncIteration):
                        break
                    if not line.startswith("data:"):
                        continue
                    try:
                        event = json.loads(line[5:].strip())
                    except ValueError:
                        continue
                    if isinstance(event, dict):
                        events.append({k: self._scrub(v) for k, v in event.items()})
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return events

    def _scrub(self, value: Any) -> Any:
        """Server text with the key blanked, in case it ever echoes it back."""
        if isinstance(value, str):
            return value.replace(self._key, "[RUNPOD_API_KEY]")
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        return value

    async def pods(self) -> list[dict[str, Any]]:
        body = await self.request("GET", "/pods")
        pods = body.get("pods") if isinstance(body, dict) else None
        if not isinstance(pods, list):
            raise BadResponse("RunPod answered the pod list without 'pods'")
        return pods

    async def pod(self, pod_id: str) -> dict[str, Any]:
        body = await self.request("GET", f"/pods/{_safe(pod_id)}", missing=PodNotFound(pod_id))
        if not isinstance(body, dict):
            raise BadResponse("RunPod answered a pod that is not an object")
        return body

    async def action(self, pod_id: str, action: str) -> dict[str, Any] | None:
        """Apply a pod action; the updated pod, or None after ``terminate`` (204)."""
        if action not in POD_ACTIONS:
            raise ValueError(f"unknown pod action {action!r}")
        body = await self.request("POST", f"/pods/{_safe(pod_id)}/action", missing=PodNotFound(pod_id),
                                  json={"action": action})
        return body if isinstance(body, dict) else None

    async def template(self, template_id: str) -> dict[str, Any]:
        missing = RunPodError(f"No template {template_id!r} in RunPod — the console lists yours and the public ones")
        body = await self.request("GET", f"/templates/{_safe(template_id, missing)}", missing=missing)
        if not isinstance(body, dict):
            raise BadResponse("RunPod answered a template that is not an object")
        return body

    async def create_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v2/pods`` (a ``CreatePodRequest``); the new pod, PROVISIONING."""
        pod = await self.request("POST", "/pods", json=body)
        if not isinstance(pod, dict):
            raise BadResponse("RunPod answered the new pod with something that is not an object")
        return pod

    async def gpu_types(self, *, availability: bool = False, count: int = 1) -> list[dict[str, Any]]:
        params = {"include": "AVAILABILITY", "count": count} if availability else None
        body = await self.request("GET", "/catalog/gpus", params=params)
        gpus = body.get("gpus") if isinstance(body, dict) else None
        if not isinstance(gpus, list):
            raise BadResponse("RunPod answered the GPU catalog without 'gpus'")
        return gpus


def _safe(resource_id: str, missing: RunPodError | None = None) -> str:
    """An id as a path segment: RunPod ids are alphanumeric, anything else is refused here."""
    if not resource_id or not resource_id.replace("_", "").replace("-", "").isalnum():
        raise missing or PodNotFound(resource_id)
    return resource_id


def _problem(response: httpx.Response) -> dict[str, Any]:
    """The RFC 9457 problem document of an error answer, or {} when it has none."""
    if response.status_code < 400:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    if isinstance(body, dict) and ("title" in body or "detail" in body):
        return body
    return {}
