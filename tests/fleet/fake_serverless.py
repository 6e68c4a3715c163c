"""A local stand-in for a RunPod serverless endpoint running worker-comfyui, and an S3-style bucket.

What it follows:
- the queue API as runpod-python's ``endpoint/asyncio/asyncio_runner.py`` calls it: ``POST /v2/{id}/run``
  → ``{"id", "status": "IN_QUEUE"}``; ``GET /status/{job}`` going ``IN_QUEUE`` → ``IN_PROGRESS`` (with
  ``delayTime``, ``workerId``) → ``COMPLETED`` / ``FAILED`` / ``CANCELLED`` / ``TIMED_OUT`` (with
  ``executionTime``; both in milliseconds); ``POST /cancel/{job}``; ``POST /purge-queue``; ``GET /health``.
  Unknown jobs are 404, a missing or wrong key 401.
- the job result as runpod-python's ``serverless/modules/rp_job.py`` builds it from a handler's return
  value: ``error`` popped to the top level, the rest kept as ``output``.
- worker-comfyui's ``handler.py`` return values: images as ``base64`` or ``s3_url``, ``success_no_images``,
  and ``{"error": "Job processing failed", "details": [...]}``.
- a presigned S3 URL: a request carrying any ``Authorization`` header is refused with AWS's 400
  ``InvalidArgument`` "Only one auth mechanism allowed"; a wrong signature is 403.

It says no: faults queued with :meth:`FakeServerless.inject` answer the next ``/status`` calls (429 with a
``Retry-After``, 502, ...), and every request that reached it is counted.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.loopback import serve_on_loopback

#: A valid 1×1 PNG, what the fake worker returns for every output.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNg+M9QDwADgQF/e5IkGQAAAABJRU5ErkJggg=="
)

#: What worker-comfyui returns for a workflow whose node raised (its ``handler.py`` wording).
EXECUTION_ERROR = {
    "error": "Job processing failed",
    "details": ["Workflow execution error: Node Type: KSampler, Node ID: 3, Message: CUDA out of memory"],
}

Handler = Callable[[dict[str, Any]], Any]


class FakeBucket:
    """An S3-style bucket serving presigned URLs: signature in the query, never an Authorization header."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.auth_headers_seen: list[str] = []
        self.gets = 0
        self._signatures: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/bucket/{key:.+}", self._get)
        self._runner, self.url = await serve_on_loopback(app)
        return self.url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` and return its presigned URL."""
        self.objects[key] = data
        self._signatures[key] = secrets.token_hex(8)
        return (f"{self.url}/bucket/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=604800"
                f"&X-Amz-Signature={self._signatures[key]}")

    async def _get(self, request: web.Request) -> web.Response:
        self.gets += 1
        key = request.match_info["key"]
        if "Authorization" in request.headers:
            self.auth_headers_seen.append(request.headers["Authorization"])
            return _s3_error(400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                             "query parameter, Signature query string parameter or the Authorization header "
                             "should be specified")
        if key not in self.objects or request.query.get("X-Amz-Signature") != self._signatures.get(key):
            return _s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match")
        return web.Response(body=self.objects[key], content_type="image/png")


def _s3_error(status: int, code: str, message: str) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return web.Response(status=status, text=body, content_type="application/xml")


class FakeServerless:
    """``/v2/{endpoint}/run|status|cancel|purge-queue|health`` with ``workers`` fake workers.

    ``handler`` plays worker-comfyui: it gets the job's input and returns what
    the handler would (default: one base64 PNG). ``bucket`` makes the default
    handler upload images there and return ``s3_url`` entries, as worker-comfyui
    does when ``BUCKET_ENDPOINT_URL`` is set.
    """

    def __init__(self, endpoint_id: str = "ep123", api_key: str = "rpa_TESTKEY", job_seconds: float = 0.02,
                 *, workers: int = 4, handler: Handler | None = None, bucket: FakeBucket | None = None) -> None:
        self.endpoint_id = endpoint_id
        self.api_key = api_key
        self.job_seconds = job_seconds
        self.workers = workers
        self.handler = handler or self._images_handler
        self.bucket = bucket
        self.jobs: dict[str, dict[str, Any]] = {}
        self.workflows: list[dict[str, Any]] = []
        self.inputs: list[dict[str, Any]] = []
        self.policies: list[dict[str, Any] | None] = []
        #: (job id, its status when /cancel arrived), in order.
        self.cancels: list[tuple[str, str]] = []
        self.purges = 0
        self.status_calls = 0
        self._faults: dict[str, deque[tuple[int, dict[str, str]]]] = {
            route: deque() for route in ("status", "cancel", "run")}
        self._queue: deque[str] = deque()
        self._submitted_at: dict[str, float] = {}
        self._running = 0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def submissions(self) -> int:
        return len(self.jobs)

    def inject(self, status: int, *, retry_after: str | None = None, times: int = 1, on: str = "status") -> None:
        """Answer the next ``times`` calls of route ``on`` (``status``, ``cancel``, ``run``) with HTTP ``status``."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._faults[on].extend([(status, headers)] * times)

    @property
    def faults_left(self) -> int:
        return sum(len(faults) for faults in self._faults.values())

    def _fault(self, route: str) -> web.Response | None:
        if not self._faults[route]:
            return None
        status, headers = self._faults[route].popleft()
        return web.json_response({"error": "injected fault"}, status=status, headers=headers)

    async def start(self) -> str:
        app = web.Application(middlewares=[self._auth])
        prefix = f"/v2/{self.endpoint_id}"
        app.router.add_post(f"{prefix}/run", self._run)
        app.router.add_get(f"{prefix}/status/{{job}}", self._status)
        app.router.add_post(f"{prefix}/cancel/{{job}}", self._cancel)
        app.router.add_post(f"{prefix}/purge-queue", self._purge)
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

    # -- the queue -------------------------------------------------------------------------------

    async def _run(self, request: web.Request) -> web.Response:
        if fault := self._fault("run"):
            return fault
        body = await request.json()
        job_input = body.get("input") if isinstance(body, dict) else None
        if not isinstance(job_input, dict):
            return web.json_response({"error": "input is required"}, status=400)
        job_id = f"{next(self._ids):04d}-fake-{secrets.token_hex(4)}"
        self.jobs[job_id] = {"id": job_id, "status": "IN_QUEUE", "_input": job_input}
        self.workflows.append(job_input.get("workflow"))
        self.inputs.append(job_input)
        self.policies.append(body.get("policy"))
        self._submitted_at[job_id] = asyncio.get_running_loop().time()
        self._queue.append(job_id)
        self._dispatch()
        return web.json_response({"id": job_id, "status": "IN_QUEUE"})

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue and self._running < self.workers:
            job = self.jobs[self._queue.popleft()]
            if job["status"] != "IN_QUEUE":
                continue
            self._running += 1
            job.update(status="IN_PROGRESS", workerId=f"worker{self._running}",
                       delayTime=int((loop.time() - self._submitted_at[job["id"]]) * 1000))
            loop.call_later(self.job_seconds, self._finish, job["id"])

    def _finish(self, job_id: str) -> None:
        self._running -= 1
        job = self.jobs[job_id]
        if job["status"] == "IN_PROGRESS":
            job["executionTime"] = int(self.job_seconds * 1000)
            result = self.handler(job["_input"])
            if isinstance(result, dict) and "error" in result:
                # rp_job.run_job: the error goes to the top, whatever is left stays as output.
                rest = {k: v for k, v in result.items() if k != "error"}
                job.update(status="FAILED", error=result["error"], **({"output": rest} if rest else {}))
            else:
                job.update(status="COMPLETED", output=result)
        self._dispatch()

    def _images_handler(self, job_input: dict[str, Any]) -> dict[str, Any]:
        if self.bucket is not None:
            url = self.bucket.put(f"{len(self.bucket.objects)}/ComfyUI_00001_.png", PNG_1X1)
            return {"images": [{"filename": "ComfyUI_00001_.png", "type": "s3_url", "data": url}]}
        return {"images": [{"filename": "ComfyUI_00001_.png", "type": "base64",
                            "data": base64.b64encode(PNG_1X1).decode()}]}

    # -- the API ---------------------------------------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        self.status_calls += 1
        if fault := self._fault("status"):
            return fault
        job = self.jobs.get(request.match_info["job"])
        if job is None:
            return web.json_response({"error": "request does not exist"}, status=404)
        return web.json_response({k: v for k, v in job.items() if not k.startswith("_")})

    async def _cancel(self, request: web.Request) -> web.Response:
        if fault := self._fault("cancel"):
            return fault
        job = self.jobs.get(request.match_info["job"])
        if job is None:
            return web.json_response({"error": "request does not exist"}, status=404)
        self.cancels.append((job["id"], job["status"]))
        if job["status"] in ("IN_QUEUE", "IN_PROGRESS"):
            job["status"] = "CANCELLED"
        return web.json_response({"id": job["id"], "status": job["status"]})

    async def _purge(self, request: web.Request) -> web.Response:
        self.purges += 1
        removed = [job_id for job_id in self._queue if self.jobs[job_id]["status"] == "IN_QUEUE"]
        for job_id in removed:
            self.jobs[job_id]["status"] = "CANCELLED"
        self._queue.clear()
        return web.json_response({"removed": len(removed), "status": "completed"})

    async def _health(self, request: web.Request) -> web.Response:
        def count(state: str) -> int:
            return sum(1 for j in self.jobs.values() if j["status"] == state)

        return web.json_response({
            "jobs": {"completed": count("COMPLETED"), "failed": count("FAILED"), "inProgress": count("IN_PROGRESS"),
                     "inQueue": count("IN_QUEUE"), "retried": 0},
            "workers": {"idle": self.workers - self._running, "initializing": 0, "ready": self.workers - self._running,
                        "running": self._running, "throttled": 0, "unhealthy": 0},
        })
