"""A RunPod serverless endpoint (worker-comfyui) as a batch target.

Follows RunPod's queue API as runpod-python's ``endpoint/asyncio`` uses it
(``/run``, ``/status/{id}``, ``/cancel/{id}``, ``/health``) and the output of
worker-comfyui's ``handler.py``: ``{"images": [{"filename", "type": "base64" |
"s3_url", "data"}], "errors"?: [...]}``, ``{"status": "success_no_images",
"images": []}``, and on failure ``{"error": ..., "details": [...]}``, which
runpod-python splits into the job's ``error`` and ``output.details``.

Money rules: a job once submitted is never resubmitted while it may still run.
Polling rides out 429s, 5xx and network blips for as long as ``give_up_after``;
a job given up on is cancelled first, and only a confirmed cancel lets the
dispatcher hand it to another target.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pistachio_tui.fleet.targets import Output, TargetFailed
from pistachio_tui.runpod.http import USER_AGENT, RunPodAuth, backoff_s, retry_after_s

#: RunPod's serverless API; tests and proxies point it elsewhere.
RUNPOD_SERVERLESS_URL = "https://api.runpod.ai"

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
#: worker-comfyui errors that say the worker (not the workflow) is broken: another try may work.
_WORKER_FAULTS = ("not reachable after multiple retries", "WebSocket communication error",
                  "HTTP communication error with ComfyUI")
#: How many of a failure's details go into the message (the rest is in the endpoint's logs).
_MAX_DETAILS = 5


class _Transient(Exception):
    """A call that may work if repeated: 429, 5xx, no answer.

    ``unheard`` is True when the request surely had no effect (refused
    connection, 429), so repeating a ``/run`` cannot queue the job twice.
    """

    def __init__(self, reason: str, retry_after: float | None = None, *, unheard: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.unheard = unheard


class _GaveUp(Exception):
    """Transient failures went on for longer than the target waits."""


@dataclass
class Meter:
    """RunPod's own timings of this target's finished jobs (billed or not, failed or not)."""

    #: Sum of ``executionTime``: what the workers billed while running our jobs.
    execution_s: float = 0.0
    #: Sum of ``delayTime``: queue wait plus cold starts (only the cold-start part bills).
    delay_s: float = 0.0
    jobs: int = 0

    def add(self, status: Mapping[str, Any]) -> None:
        self.execution_s += _ms(status.get("executionTime"))
        self.delay_s += _ms(status.get("delayTime"))
        self.jobs += 1


def _ms(value: Any) -> float:
    """Seconds from RunPod's milliseconds; Infinity or NaN (a broken answer) counts as nothing
    rather than making the batch's cost "$inf"."""
    return value / 1000 if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else 0.0


class ServerlessTarget:
    """A RunPod serverless endpoint running the worker-comfyui image.

    ``slots`` starts at ``min_slots`` and follows the endpoint's live workers
    (``/health``) at :meth:`check`, up to ``max_slots``. The images a prompt's
    ``LoadImage`` nodes name go with its job as worker-comfyui's ``input.images``
    when they are found in ``input_dirs`` (a worker whose image or volume already
    has them needs none); ``execution_timeout_s`` and ``ttl_s`` become the job's
    RunPod ``policy``.
    """

    def __init__(self, endpoint_id: str, api_key: str, *, base_url: str = RUNPOD_SERVERLESS_URL,
                 min_slots: int = 2, max_slots: int = 32, poll_interval: float = 1.0, timeout: float = 30.0,
                 give_up_after: float = 600.0, backoff_cap: float = 30.0,
                 execution_timeout_s: float | None = None, ttl_s: float | None = None,
                 input_dirs: Sequence[Path] = (),
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = f"endpoint:{endpoint_id}"
        self.slots = min_slots
        self.meter = Meter()
        self._min_slots, self._max_slots = min_slots, max_slots
        self._poll = poll_interval
        self._give_up_after = give_up_after
        #: How long a one-off call (health, cancel) may keep failing before it is given up.
        self._short_patience = min(give_up_after, 30.0)
        self._backoff_cap = backoff_cap
        self._policy = {key: int(seconds * 1000) for key, seconds in
                        (("executionTimeout", execution_timeout_s), ("ttl", ttl_s)) if seconds is not None}
        self._input_dirs = tuple(input_dirs)
        #: Input image name → its base64, read once per batch.
        self._images: dict[str, str] = {}
        self._jobs: set[str] = set()
        self._cancelled: set[str] = set()
        headers = {"User-Agent": USER_AGENT}
        self._api = httpx.AsyncClient(
            base_url=f"{base_url.rstrip('/')}/v2/{endpoint_id}",
            auth=RunPodAuth(api_key, extra_origins=[base_url]),
            headers=headers, timeout=timeout, transport=transport,
        )
        # Output files live on other hosts (presigned bucket URLs): this client
        # has no credentials at all, so none can follow a redirect either.
        self._files = httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport,
                                        follow_redirects=True)

    def __repr__(self) -> str:  # never show the key
        return f"ServerlessTarget({self.name!r})"

    def billed_seconds(self) -> float:
        """Worker seconds RunPod bills for this target's finished jobs (their ``executionTime``)."""
        return self.meter.execution_s

    # -- HTTP ------------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One API call; ``_Transient`` for what may pass, ``TargetFailed`` for what will not."""
        try:
            response = await self._api.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            unheard = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            raise _Transient(f"{self.name} unreachable ({type(exc).__name__})", unheard=unheard) from None
        status = response.status_code
        if status == 429:
            raise _Transient(f"{self.name} rate limited (HTTP 429)", retry_after_s(response.headers.get("Retry-After")),
                             unheard=True)
        if status >= 500:
            raise _Transient(f"{self.name} answered HTTP {status}", retry_after_s(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise TargetFailed(f"{self.name} rejected the RunPod API key; check RUNPOD_API_KEY", retry=False)
        if status == 404 and path.startswith("/status/"):
            raise TargetFailed(f"{self.name} no longer knows job {path.rsplit('/', 1)[-1]} (past its ttl?)")
        if status >= 400:
            raise TargetFailed(f"{self.name} refused {method} {path.split('/')[1]}: HTTP {status} "
                               f"{_short(response.text)}", retry=False)
        try:
            payload = response.json()
        except ValueError:
            raise _Transient(f"{self.name} answered something that is not JSON") from None
        if not isinstance(payload, dict):
            raise _Transient(f"{self.name} answered JSON that is not an object")
        return payload

    async def _call_patiently(self, method: str, path: str, *, patience: float, only_unheard: bool = False,
                              **kwargs: Any) -> dict[str, Any]:
        """``_call`` until it answers, waiting out transient failures for up to ``patience`` seconds
        (with ``only_unheard``, only those that surely had no effect; others raise ``_GaveUp``)."""
        deadline = time.monotonic() + patience
        attempt = 0
        while True:
            try:
                return await self._call(method, path, **kwargs)
            except _Transient as exc:
                if only_unheard and not exc.unheard:
                    raise _GaveUp(str(exc)) from None
                wait = exc.retry_after if exc.retry_after is not None else backoff_s(
                    attempt, base=max(self._poll, 0.01), cap=self._backoff_cap)
                if time.monotonic() + wait > deadline:
                    raise _GaveUp(str(exc)) from None
                attempt += 1
                await asyncio.sleep(wait)

    # -- Target ----------------------------------------------------------------------------------

    async def check(self, node_types: set[str]) -> str | None:
        # The worker's node set is not queryable; /health says it is there and how many workers run.
        try:
            health = await self._call_patiently("GET", "/health", patience=self._short_patience)
        except (TargetFailed, _GaveUp) as exc:
            return str(exc)
        workers = health.get("workers")
        if isinstance(workers, dict):
            live = sum(n for key, n in workers.items()
                       if key in ("idle", "running", "initializing") and isinstance(n, int) and n > 0)
            self.slots = max(self._min_slots, min(self._max_slots, live))
        return None

    async def run(self, prompt: dict[str, Any]) -> list[Output]:
        job_id = await self._submit(prompt)
        self._jobs.add(job_id)
        try:
            try:
                status = await self._wait(job_id)
            except _GaveUp as exc:
                status = await self._abandon(job_id, str(exc))
            except (asyncio.CancelledError, TargetFailed):
                # The batch is ending, or the endpoint refused to say more: a job left there would still bill.
                await asyncio.shield(self._cancel_job(job_id))
                raise
            except Exception as exc:
                # Anything this code did not foresee still ends the job, never the batch.
                await asyncio.shield(self._cancel_job(job_id))
                raise TargetFailed(f"{self.name} job {job_id}: unexpected {type(exc).__name__}: {exc}",
                                   retry=False) from exc
        finally:
            self._jobs.discard(job_id)
        self.meter.add(status)
        try:
            return await self._result(job_id, status)
        except TargetFailed:
            raise
        except Exception as exc:
            raise TargetFailed(f"{self.name} job {job_id}: unexpected {type(exc).__name__} reading its output: "
                               f"{exc}", retry=False) from exc

    async def _submit(self, prompt: dict[str, Any]) -> str:
        job_input: dict[str, Any] = {"workflow": prompt}
        images = await asyncio.to_thread(self._input_images, prompt)
        if images:
            job_input["images"] = images
        body: dict[str, Any] = {"input": job_input}
        if self._policy:
            body["policy"] = self._policy
        try:
            job = await self._call_patiently("POST", "/run", patience=self._give_up_after, only_unheard=True,
                                             json=body)
        except _GaveUp as exc:
            # Whether RunPod queued it is unknown only after a 5xx or a timeout
            # mid-request; the dispatcher's retry then is the one risk left, and it is rare.
            raise TargetFailed(str(exc)) from None
        job_id = job.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise TargetFailed(f"{self.name} returned no job id")
        return job_id

    def _input_images(self, prompt: dict[str, Any]) -> list[dict[str, str]]:
        """worker-comfyui's ``input.images`` for the files the prompt's image loaders name."""
        images = []
        for name in sorted(loaded_images(prompt)):
            if name not in self._images:
                path = next((d / name for d in self._input_dirs if (d / name).is_file()), None)
                if path is None:
                    continue
                self._images[name] = base64.b64encode(path.read_bytes()).decode()
            images.append({"name": name, "image": self._images[name]})
        return images

    async def _wait(self, job_id: str) -> dict[str, Any]:
        """The job's final ``/status``; transient failures reset on each answer."""
        while True:
            status = await self._call_patiently("GET", f"/status/{job_id}", patience=self._give_up_after)
            if status.get("status") in TERMINAL:
                return status
            await asyncio.sleep(self._poll)

    async def _abandon(self, job_id: str, reason: str) -> dict[str, Any]:
        """Cancel a job we stopped hearing about. Its final status if the cancel says it ended
        anyway; ``TargetFailed`` otherwise, resubmittable only when the cancel was confirmed."""
        answer = await self._cancel_job(job_id)
        state = answer.get("status") if answer else None
        if state in ("COMPLETED", "FAILED", "TIMED_OUT"):
            try:
                final = await self._call_patiently("GET", f"/status/{job_id}", patience=self._short_patience)
            except _GaveUp:
                final = {}
            if final.get("status") == state:
                return final
        if state in TERMINAL:
            raise TargetFailed(f"{self.name} job {job_id}: gave up ({reason}); the job was cancelled")
        raise TargetFailed(f"{self.name} job {job_id} may still be running ({reason}) and could not be cancelled;"
                           " not resubmitted, so it is not paid for twice", retry=False)

    async def _cancel_job(self, job_id: str) -> dict[str, Any] | None:
        """``/cancel`` a job; its answer, or None when the endpoint could not be told."""
        if job_id in self._cancelled:
            return {"status": "CANCELLED"}
        try:
            answer = await self._call_patiently("POST", f"/cancel/{job_id}", patience=self._short_patience)
        except (TargetFailed, _GaveUp):
            return None
        self._cancelled.add(job_id)
        return answer

    async def _result(self, job_id: str, status: dict[str, Any]) -> list[Output]:
        state = status.get("status")
        if state == "COMPLETED":
            return await self._outputs(job_id, status.get("output"))
        if state == "FAILED":
            error, details = _failure(status)
            message = f"{self.name} job {job_id} failed: {error}" + "".join(f"\n  {d}" for d in details)
            raise TargetFailed(message, retry=any(fault in error for fault in _WORKER_FAULTS))
        if state == "TIMED_OUT":
            raise TargetFailed(f"{self.name} job {job_id} ran past the endpoint's execution timeout", retry=False)
        raise TargetFailed(f"{self.name} job {job_id} was cancelled", retry=False)

    async def _outputs(self, job_id: str, output: Any) -> list[Output]:
        def unexpected(what: str) -> TargetFailed:
            return TargetFailed(f"{self.name} job {job_id} completed with {what}; is the endpoint running "
                                "worker-comfyui?", retry=False)

        if not isinstance(output, dict):
            raise unexpected(f"an output that is {type(output).__name__}, not an object")
        images = output.get("images")
        if images is None and isinstance(output.get("message"), str):
            # worker-comfyui before 5.0: one image (base64 or URL) as "message".
            if output.get("status") != "success":
                raise TargetFailed(f"{self.name} job {job_id}: worker says {_short(output['message'])}", retry=False)
            images = [{"filename": "output.png", "data": output["message"]}]
        if not images:
            if output.get("status") == "success_no_images":
                raise TargetFailed(f"{self.name} job {job_id} produced no images (worker-comfyui returns images"
                                   " only: videos and other files stay on the worker)", retry=False)
            errors = output.get("errors")
            if isinstance(errors, list) and errors:
                raise TargetFailed(f"{self.name} job {job_id} returned no images: "
                                   + "; ".join(_short(str(e)) for e in errors[:_MAX_DETAILS]), retry=False)
            raise unexpected(f"no images (output keys: {', '.join(sorted(map(str, output))) or 'none'})")
        if not isinstance(images, list):
            raise unexpected("'images' that is not a list")
        files: list[Output] = []
        for image in images:
            if not isinstance(image, dict) or not isinstance(image.get("data"), str):
                raise unexpected("an image entry without data")
            name = str(image.get("filename") or f"output_{len(files)}.png")
            data = image["data"]
            if image.get("type") == "s3_url" or data.startswith(("http://", "https://")):
                files.append(Output(name, await self._download(name, data)))
                continue
            try:
                files.append(Output(name, base64.b64decode(data.split(",", 1)[-1], validate=True)))
            except (binascii.Error, ValueError):
                raise TargetFailed(f"{self.name} sent {name} as invalid base64", retry=False) from None
        return files

    async def _download(self, name: str, url: str) -> bytes:
        """An output file from its (presigned) URL, with no credentials, retrying blips."""
        for attempt in range(4):
            try:
                response = await self._files.get(url)
            except httpx.TransportError as exc:
                reason = type(exc).__name__
            else:
                if response.status_code < 400:
                    return response.content
                if response.status_code < 500 and response.status_code != 429:
                    # Rerunning the job would bill it again; the URL is what is wrong.
                    raise TargetFailed(f"cannot fetch {name}: the bucket answered HTTP {response.status_code}"
                                       " (an expired presigned URL?)", retry=False)
                reason = f"HTTP {response.status_code}"
            await asyncio.sleep(backoff_s(attempt, base=max(self._poll, 0.01), cap=self._backoff_cap))
        raise TargetFailed(f"cannot fetch {name}: {reason}", retry=False)

    async def cancel(self) -> None:
        """Cancel each job this target has on the endpoint.

        Per job, not ``/purge-queue``: the endpoint's queue may hold other
        clients' jobs, and purging would drop them too.
        """
        await asyncio.gather(*(self._cancel_job(job_id) for job_id in list(self._jobs)))

    async def aclose(self) -> None:
        await asyncio.gather(self._api.aclose(), self._files.aclose())


def loaded_images(prompt: Mapping[str, Any]) -> set[str]:
    """Input file names the prompt's ``LoadImage``-style nodes read (literal ``image`` inputs)."""
    names = set()
    for node in prompt.values():
        if not isinstance(node, dict) or not str(node.get("class_type", "")).startswith("LoadImage"):
            continue
        image = (node.get("inputs") or {}).get("image")
        if isinstance(image, str) and image and "/" not in image and "\\" not in image:
            names.add(image)
    return names


def _failure(status: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A FAILED job's error and details, from worker-comfyui's shape or runpod-python's own."""
    error: Any = status.get("error")
    details: list[str] = []
    if isinstance(error, str) and error.startswith("{"):
        try:
            error = json.loads(error)
        except ValueError:
            pass
    if isinstance(error, dict):
        # runpod-python wraps an exception the handler raised: error_type, error_message, traceback.
        details += [str(d) for d in error.get("details") or []] if isinstance(error.get("details"), list) else []
        error = error.get("error_message") or error.get("error") or error.get("message") or json.dumps(error)
    output = status.get("output")
    if isinstance(output, dict) and isinstance(output.get("details"), list):
        details += [str(d) for d in output["details"]]
    shown = [_short(d, 300) for d in details[:_MAX_DETAILS]]
    if len(details) > _MAX_DETAILS:
        shown.append(f"... and {len(details) - _MAX_DETAILS} more in the endpoint's logs")
    return _short(str(error or "no error message"), 500), shown


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
