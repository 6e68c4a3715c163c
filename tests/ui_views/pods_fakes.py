"""Deterministic stand-ins for the Pods view tests: an in-memory RunPod client and a ComfyUI probe."""

from __future__ import annotations

import httpx

from pistachio_tui.runpod.idle import IdleGuard
from pistachio_tui.runpod.models import Account, GpuType, Overview, Pod
from pistachio_tui.runpod.monitor import PodsMonitor
from pistachio_tui.sim.runpod import default_gpu_types, default_pods

REACHABLE_POD = "abc123xyz"


class StubRunPod:
    """Answers like ``RunPodClient`` from the fake API's default wire data, without a server."""

    def __init__(self) -> None:
        self.pods = default_pods()
        self.stopped: list[str] = []

    async def overview(self) -> Overview:
        return Overview(Account(25.0, 3.68, 80.0), [Pod.from_wire(p) for p in self.pods])

    async def gpu_types(self) -> list[GpuType]:
        return [GpuType.from_wire(t) for t in default_gpu_types()]

    async def stop_pod(self, pod_id: str) -> str:
        self.stopped.append(pod_id)
        return "EXITED"

    async def aclose(self) -> None:
        pass


def frozen_monitor(client, *, idle_minutes: float = 0.0, auto_stop: bool = False) -> PodsMonitor:
    """A monitor whose clock never moves, so idle times and countdowns are the same every run."""
    def clock() -> float:
        return 1000.0

    guard = IdleGuard(idle_minutes=idle_minutes, auto_stop=auto_stop, countdown_seconds=90.0, clock=clock)
    return PodsMonitor(client, guard=guard, this_pod_id="abc123xyz", clock=clock)


def comfy_probe_http() -> httpx.AsyncClient:
    """RunPod's proxy: ComfyUI answers on one pod, the others get a 502."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host.startswith(REACHABLE_POD) or request.url.host == "127.0.0.1":
            return httpx.Response(200, json={"system": {"comfyui_version": "0.8.0"}, "devices": []})
        return httpx.Response(502)
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))
