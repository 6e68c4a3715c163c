"""The REST v2 half of the simulated RunPod API, serving the same pods as the GraphQL half.

Follows RunPod's published v2 OpenAPI document (the snapshot RunPod's MCP server
vendors): ``GET /v2/pods`` → ``{"pods": [Pod]}``, ``GET /v2/pods/{id}``,
``POST /v2/pods/{id}/action`` (body exactly ``{"action": start|stop|restart|terminate}``,
200 with the pod, 204 for terminate, 409 when the status does not allow it),
``GET /v2/catalog/gpus`` → ``{"gpus": [GpuType]}`` (with ``availability`` when asked
``include=AVAILABILITY``), ``GET /v2/templates/{id}``, ``POST /v2/pods`` (a
``CreatePodRequest``: ``name`` and ``image`` required, exactly one of ``gpu``/``cpu``,
no other properties; 201 with the pod, PROVISIONING). Errors are problem documents
``{"title", "status", "detail", "errors"?}`` served as ``application/problem+json``;
a 429 carries ``Retry-After``. A host without v2 answers a plain-text 404.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web

#: Which actions each v2 status allows (the ``actions`` field of a pod).
ACTIONS_BY_STATUS = {
    "RUNNING": ["stop", "restart", "terminate"],
    "EXITED": ["start", "terminate"],
    "ERROR": ["start", "terminate"],
    "PROVISIONING": ["stop", "terminate"],
    "STARTING": ["stop", "terminate"],
}


def problem(status: int, detail: str, *, errors: list[str] | None = None,
            headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return web.Response(status=status, text=json.dumps(body), content_type="application/problem+json",
                        headers=headers)


def v2_status(wire: dict[str, Any]) -> str:
    """A GraphQL pod's state as v2 names it: a RUNNING pod with no runtime yet is STARTING."""
    desired = wire["desiredStatus"]
    if desired == "RUNNING":
        return "RUNNING" if wire.get("runtime") else "STARTING"
    return desired


def rest_pod(wire: dict[str, Any]) -> dict[str, Any]:
    """The v2 ``Pod`` for a GraphQL-shaped fake pod."""
    status = v2_status(wire)
    runtime = wire.get("runtime")
    rest_runtime = None
    if runtime:
        container = runtime.get("container") or {}
        rest_runtime = {
            "uptime": runtime.get("uptimeInSeconds"),
            "gpus": [{"util": g.get("gpuUtilPercent"), "memoryUtil": g.get("memoryUtilPercent")}
                     for g in runtime.get("gpus") or []],
            "cpu": {"util": container.get("cpuPercent")},
            "memory": {"util": container.get("memoryPercent")},
            "ports": [{"private": p["privatePort"], "public": p["publicPort"], "type": p["type"],
                       "ip": p["ip"] if p["isIpPublic"] else None} for p in runtime.get("ports") or []],
        }
    volume = wire.get("volumeInGb") or 0
    return {
        "id": wire["id"], "name": wire["name"], "image": wire.get("imageName") or "", "args": "", "disk": 20,
        "ports": [p for p in (wire.get("ports") or "").split(",") if p], "env": {}, "registry": None,
        "status": status, "actions": ACTIONS_BY_STATUS.get(status, []),
        "mounts": {"persistent": {"size": volume, "path": "/workspace"}} if volume else {},
        "gpu": {"id": (wire.get("machine") or {}).get("gpuDisplayName"), "count": wire.get("gpuCount") or 1},
        "cloud": "SECURE", "dataCenterId": "US-KS-2", "template": None,
        "cost": wire["costPerHr"] if status != "EXITED" else 0.0, "locked": False,
        "globalNetworking": {"enabled": False}, "runtime": rest_runtime,
        "createdAt": "2026-06-01T12:00:00Z", "startedAt": "2026-06-01T12:02:00Z" if runtime else None,
    }


def rest_gpu(wire: dict[str, Any]) -> dict[str, Any]:
    """The v2 catalog ``GpuType`` for a GraphQL-shaped fake GPU type (no spot prices in v2)."""
    return {
        "id": wire["id"], "name": wire["displayName"], "pool": None, "manufacturer": "NVIDIA",
        "memory": wire["memoryInGb"], "secure": wire["secureCloud"], "community": wire["communityCloud"],
        "price": {"secure": wire["securePrice"] or 0.0, "community": wire["communityPrice"] or 0.0},
        "maxCount": {"secure": 8, "community": 4},
    }


def action_body_errors(body: Any) -> list[str]:
    """Why a ``PodActionRequest`` body fails v2's schema (``additionalProperties: false``)."""
    if not isinstance(body, dict):
        return ["$: expected object"]
    errors = [f"$: additional properties '{k}' not allowed" for k in body if k != "action"]
    if "action" not in body:
        errors.append("$: missing property 'action'")
    elif body["action"] not in ("start", "stop", "restart", "terminate"):
        errors.append("$.action: value must be one of 'start', 'stop', 'restart', 'terminate'")
    return errors


#: The top-level properties a ``CreatePodRequest`` may have (``unevaluatedProperties: false``).
CREATE_POD_PROPERTIES = {"image", "args", "disk", "ports", "env", "registry", "name", "mounts", "gpu", "cpu",
                         "cloud", "dataCenterIds", "globalNetworking"}


def create_pod_errors(body: Any) -> list[str]:
    """Why a ``CreatePodRequest`` body fails v2's schema."""
    if not isinstance(body, dict):
        return ["$: expected object"]
    errors = [f"$: additional properties '{k}' not allowed" for k in body if k not in CREATE_POD_PROPERTIES]
    errors += [f"$: missing property '{k}'" for k in ("name", "image") if not body.get(k)]
    if ("gpu" in body) == ("cpu" in body):
        errors.append("$: exactly one of 'gpu' or 'cpu' is required")
    gpu = body.get("gpu")
    if isinstance(gpu, dict) and (set(gpu) - {"id", "count"} or "id" not in gpu):
        errors.append("$.gpu: expected {id, count}")
    mounts = body.get("mounts") or {}
    if "persistent" in mounts and "network" in mounts:
        errors.append("$.mounts: persistent and network are mutually exclusive")
    return errors


def comfy_template() -> dict[str, Any]:
    """A v2 ``Template`` for a ComfyUI image, as ``GET /v2/templates/{id}`` returns it."""
    return {"id": "tpl_comfy", "name": "ComfyUI", "image": "runpod/comfyui:latest", "args": "", "disk": 30,
            "ports": ["8188/http", "22/tcp"], "env": {"COMFY_ARGS": "--listen"}, "registry": None,
            "mounts": {"persistent": {"size": 50, "path": "/workspace"}}, "serverless": False, "public": True,
            "category": "NVIDIA"}
