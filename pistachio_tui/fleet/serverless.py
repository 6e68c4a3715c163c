"""A RunPod serverless endpoint (worker-comfyui) as a batch target."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

import httpx

from pistachio_tui.fleet.targets import Output, TargetFailed

#: RunPod's serverless API; tests and proxies point it elsewhere.
RUNPOD_SERVERLESS_URL = "https://api.runpod.ai"


class ServerlessTarget:
    """A RunPod serverless endpoint running the worker-comfyui image."""

    def __init__(self, endpoint_id: str, api_key: str, *, base_url: str = RUNPOD_SERVERLESS_URL,
                 slots: int = 4, poll_interval: float = 1.0, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = f"endpoint:{endpoint_id}"
        self.slots = slots
        self._poll = poll_interval
        self._jobs: set[str] = set()
        self._http = httpx.AsyncClient(
            base_url=f"{base_url.rstrip('/')}/v2/{endpoint_id}",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:  # never show the key
        return f"ServerlessTarget({self.name!r})"

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TargetFailed(f"{self.name} unreachable ({type(exc).__name__})") from None
        if response.status_code in (401, 403):
            raise TargetFailed(f"{self.name} rejected the RunPod API key; check RUNPOD_API_KEY", retry=False)
        if response.status_code >= 400:
            raise TargetFailed(f"{self.name} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise TargetFailed(f"{self.name} answered something that is not JSON") from None

    async def check(self, node_types: set[str]) -> str | None:
        # The worker's node set is not queryable; /health only says it is there.
        try:
            await self._call("GET", "/health")
        except TargetFailed as exc:
            return str(exc)
        return None

    async def run(self, prompt: dict[str, Any]) -> list[Output]:
        job = await self._call("POST", "/run", json={"input": {"workflow": prompt}})
        job_id = job.get("id")
        if not job_id:
            raise TargetFailed(f"{self.name} returned no job id")
        self._jobs.add(job_id)
        try:
            while True:
                status = await self._call("GET", f"/status/{job_id}")
                state = status.get("status")
                if state == "COMPLETED":
                    return await self._outputs(status.get("output") or {})
                if state in ("FAILED", "CANCELLED", "TIMED_OUT"):
                    raise TargetFailed(f"{self.name} job {state.lower()}: {status.get('error', '')}".strip())
                await asyncio.sleep(self._poll)
        finally:
            self._jobs.discard(job_id)

    async def _outputs(self, output: dict[str, Any]) -> list[Output]:
        files = []
        for image in output.get("images", []):
            name = str(image.get("filename", f"output_{len(files)}.png"))
            data = image.get("data", "")
            if image.get("type") == "s3_url" or str(data).startswith(("http://", "https://")):
                try:
                    response = await self._http.get(data)
                    response.raise_for_status()
                except httpx.HTTPError as exc:
                    raise TargetFailed(f"cannot fetch {name}: {type(exc).__name__}") from None
                files.append(Output(name, response.content))
                continue
            try:
                files.append(Output(name, base64.b64decode(str(data).split(",", 1)[-1], validate=True)))
            except (binascii.Error, ValueError):
                raise TargetFailed(f"{self.name} sent {name} as invalid base64") from None
        return files

    async def cancel(self) -> None:
        for job_id in list(self._jobs):
            try:
                await self._call("POST", f"/cancel/{job_id}")
            except TargetFailed:
                pass  # best effort: the endpoint may already have finished it

    async def aclose(self) -> None:
        await self._http.aclose()
