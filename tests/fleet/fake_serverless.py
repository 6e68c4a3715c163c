"""A local stand-in for a RunPod serverless endpoint running worker-comfyui."""

from __future__ import annotations

import asyncio
import base64
import itertools
from typing import Any

from aiohttp import web

from tests.loopback import serve_on_loopback

#: A valid 1×1 PNG, what the fake worker returns for every output.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNg+M9QDwADgQF/e5IkGQAAAABJRU5ErkJggg=="
)


class FakeServerless:
    """``/v2/{endpoint}/run|status|cancel|health`` with a job queue of its own."""

    def __init__(self, endpoint_id: str = "ep123", api_key: str = "rpa_TESTKEY", job_seconds: float = 0.02) -> None:
        self.endpoint_id = endpoint_id
        self.api_key = api_key
        self.job_seconds = job_seconds
        self.jobs: dict[str, dict[str, Any]] = {}
        self.workflows: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(middlewares=[self._auth])
        prefix = f"/v2/{self.endpoint_id}"
        app.router.add_post(f"{prefix}/run", self._run)
        app.router.add_get(f"{prefix}/status/{{job}}", self._status)
        app.router.add_post(f"{prefix}/cancel/{{job}}", self._cancel)
        app.router.add_get(f"{prefix}/health", self._health)
        self._runner, self.url = await serve_on_loopback(app)
        return self.url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": "Unauthorized"}, status=401)
        return await handler(request)

    async def _run(self, request: web.Request) -> web.Response:
        body = await request.json()
        workflow = body["input"]["workflow"]
        job_id = f"job-{next(self._ids)}"
        self.jobs[job_id] = {"id": job_id, "status": "IN_QUEUE"}
        self.workflows.append(workflow)
        asyncio.get_running_loop().call_later(self.job_seconds, self._finish, job_id)
        return web.json_response({"id": job_id, "status": "IN_QUEUE"})

    def _finish(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job["status"] != "IN_QUEUE":
            return
        job.update(status="COMPLETED", output={"images": [
            {"filename": "ComfyUI_00001_.png", "type": "base64", "data": base64.b64encode(PNG_1X1).decode()}
        ]}, executionTime=int(self.job_seconds * 1000))

    async def _status(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job"])
        if job is None:
            return web.json_response({"error": "job not found"}, status=404)
        return web.json_response(job)

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job"])
        if job is None:
            return web.json_response({"error": "job not found"}, status=404)
        if job["status"] == "IN_QUEUE":
            job["status"] = "CANCELLED"
        return web.json_response({"id": job["id"], "status": job["status"]})

    async def _health(self, request: web.Request) -> web.Response:
        queued = sum(1 for j in self.jobs.values() if j["status"] == "IN_QUEUE")
        done = sum(1 for j in self.jobs.values() if j["status"] == "COMPLETED")
        return web.json_response({"jobs": {"completed": done, "failed": 0, "inProgress": 0, "inQueue": queued,
                                           "retried": 0}, "workers": {"idle": 1, "running": 0}})
