"""Async REST client for one ComfyUI server.

One ``httpx.AsyncClient`` per server, a timeout on every request, and every
failure turned into a typed ``ComfyError`` whose message says what to check.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import uuid
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from pistachio_tui.comfy.errors import (
    AuthRequired,
    BadResponse,
    PromptRejected,
    Refused,
    ServerError,
    ServerUnreachable,
)
from pistachio_tui.comfy.types import (
    HistoryEntry,
    Job,
    JobsPage,
    LogEntry,
    QueueState,
    SubmitResult,
    SystemStats,
    ValidationReport,
)
from pistachio_tui.config import hide_password, scrub_secrets

_BODY_SNIPPET = 300
#: Answers larger than this are parsed in a thread: a server with many node packs sends
#: several MB of /object_info, which would freeze the UI for a visible moment.
DECODE_IN_THREAD_BYTES = 512 * 1024


#: A request may take this many times the client's (per read) timeout in all.
API_DEADLINE_FACTOR = 3
#: ``view`` may take this many times the client's timeout in all (outputs can be large).
VIEW_DEADLINE_FACTOR = 30

@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """One verifying TLS context (httpx's defaults) for every client in the process.

    Each ``httpx.AsyncClient`` would otherwise load the CA bundle again: tens of
    milliseconds per server, so start-up grew with every configured server.
    """
    return httpx.create_ssl_context()


class ComfyClient:
    """REST API of one ComfyUI server.

    ``headers`` go on every request and on the websocket (proxy auth);
    ``transport`` lets tests plug in a mock.
    """

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0,
                 client_id: str | None = None, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        #: The URL as messages show it: a password in it is hidden.
        self.shown_url = hide_password(self.base_url)
        self.headers = dict(headers or {})
        self.client_id = client_id or uuid.uuid4().hex
        self.timeout = timeout
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=timeout,
                                       transport=transport, verify=shared_tls_context())
        self._object_info: dict[str, dict[str, Any]] | None = None
        self._object_info_lock = asyncio.Lock()
        #: Learnt on first use: None until then, False when this server lacks the route.
        self._has_jobs: bool | None = None
        self._has_job_cancel: bool | None = None

    def __repr__(self) -> str:
        # Headers may hold proxy credentials, so they stay out of the repr.
        return f"ComfyClient({self.shown_url!r})"

    async def __aenter__(self) -> ComfyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    # -- raw helpers ---------------------------------------------------------

    async def request(self, method: str, path: str, *, deadline: float | None = None,
                      **kwargs: Any) -> httpx.Response:
        """Send one request; a network failure or a 401/403/5xx becomes a ``ComfyError``.

        The whole exchange must end within ``deadline`` seconds (default: a few times the
        client's ``timeout``, room for a large ``/object_info``): httpx's own timeout applies to each read, so a server dribbling a
        byte a second would otherwise hold the caller for as long as it likes.
        Other 4xx answers are returned, because their meaning depends on the endpoint.
        """
        limit = self.timeout * API_DEADLINE_FACTOR if deadline is None else deadline
        try:
            async with asyncio.timeout(limit):
                response = await self._http.request(method, path, **kwargs)
        except (httpx.TimeoutException, TimeoutError) as exc:
            # httpx's timeout is per read; ours (TimeoutError) is for the whole answer.
            waited = self.timeout if isinstance(exc, httpx.TimeoutException) else limit
            raise ServerUnreachable(
                f"ComfyUI at {self.shown_url} did not answer within {waited:g} s — "
                "is it overloaded, or is a proxy or firewall holding the connection? (timeout)") from None
        except httpx.ConnectError as exc:
            raise ServerUnreachable(self._connect_failure(exc)) from None
        except httpx.UnsupportedProtocol:
            raise ServerUnreachable(
                f"{self.shown_url} is not a usable server URL — it must start with http:// or https://") from None
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"Lost the connection to ComfyUI at {self.shown_url} — did it crash or restart? "
                f"({type(exc).__name__})") from None
        if response.status_code == 403 and _from_comfyui(response):
            raise Refused(self._refusal(method, path), status=403, body=self._said(response))
        if response.status_code in (401, 403):
            raise AuthRequired(
                f"ComfyUI at {self.shown_url} answered {response.status_code}: this proxy needs an auth "
                "header; add one with the server's `headers` setting")
        if response.status_code >= 500:
            raise ServerError(
                f"ComfyUI at {self.shown_url} failed on {method} {path} ({response.status_code}): "
                f"{_snippet(self._said(response)) or 'no details'} — see the server log",
                status=response.status_code, body=self._said(response))
        return response

    def _refusal(self, method: str, path: str) -> str:
        where = f"ComfyUI at {self.shown_url} refused {method} {path} (403)"
        if path.startswith(_MANAGER_PATHS):
            return (f"{where}: ComfyUI-Manager's security_level forbids this action; lower it in the "
                    "Manager's config.ini or do it on the server by hand")
        if path.endswith(("/view", "/upload/image", "/upload/mask")) or "/userdata" in path:
            return f"{where}: the path points outside its input/output/temp folders"
        return (f"{where}: its origin check failed — a reverse proxy must pass the Host header through "
                "unchanged, or start ComfyUI with --enable-cors-header")

    def _connect_failure(self, exc: httpx.ConnectError) -> str:
        text = str(exc).lower()
        if "ssl" in text or "certificate" in text or "tls" in text:
            return (f"Cannot talk TLS to ComfyUI at {self.shown_url} — does the URL need http:// instead "
                    f"of https://, or is the certificate invalid? (TLS error: {exc})")
        if "name or service" in text or "nodename" in text or "getaddrinfo" in text or "name resolution" in text:
            host = urlsplit(self.base_url).hostname
            return f"Cannot resolve host {host!r} for ComfyUI at {self.shown_url} — check the URL. (DNS error)"
        return (f"Cannot reach ComfyUI at {self.shown_url} — is it running and listening on that port? "
                "(connection refused)")

    def scrub(self, text: str) -> str:
        """``text`` without this server's credentials (auth header values, URL password)."""
        password = urlsplit(self.base_url).password
        return scrub_secrets(text, [*self.headers.values(), *([password] if password else [])])

    def _said(self, response: httpx.Response) -> str:
        # A proxy's error page may echo the request, auth header included.
        return self.scrub(response.text)

    def _unexpected(self, method: str, path: str, response: httpx.Response) -> ServerError:
        return ServerError(
            f"ComfyUI at {self.shown_url} answered {response.status_code} to {method} {path}: "
            f"{_snippet(self._said(response)) or 'no details'}",
            status=response.status_code, body=self._said(response))

    def _decode(self, method: str, path: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadResponse(
                f"ComfyUI at {self.shown_url} sent something that is not JSON for {method} {path} — "
                f"is the URL really a ComfyUI server? ({_snippet(self._said(response)) or 'empty body'})") from None

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """``GET path`` and decode JSON; any status outside 2xx is an error."""
        response = await self.request("GET", path, params=params)
        if not response.is_success:
            raise self._unexpected("GET", path, response)
        if len(response.content) > DECODE_IN_THREAD_BYTES:
            return await asyncio.to_thread(self._decode, "GET", path, response)
        return self._decode("GET", path, response)

    async def post_json(self, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        """``POST path`` with a JSON body; returns the decoded answer, or None when it is empty."""
        # The Manager answers 201 to some queue calls, so any 2xx counts.
        response = await self.request("POST", path, json=json, params=params)
        if not response.is_success:
            raise self._unexpected("POST", path, response)
        return self._decode("POST", path, response) if response.content.strip() else None

    def _shape_error(self, what: str, exc: Exception) -> BadResponse:
        return BadResponse(f"ComfyUI at {self.shown_url} sent an unexpected {what} ({type(exc).__name__}: {exc})")

    # -- endpoints -----------------------------------------------------------

    async def system_stats(self) -> SystemStats:
        """Versions, RAM and devices with VRAM."""
        body = await self.get_json("/system_stats")
        try:
            return SystemStats.from_wire(body)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            # ValueError: a size of Infinity or NaN (Python's json writes both) is no byte count.
            raise self._shape_error("/system_stats answer", exc) from None

    async def object_info(self, refresh: bool = False) -> dict[str, dict[str, Any]]:
        """Every node class the server knows; cached until ``refresh`` or ``invalidate_object_info``."""
        async with self._object_info_lock:
            if self._object_info is None or refresh:
                body = await self.get_json("/object_info")
                if not isinstance(body, dict):
                    raise self._shape_error("/object_info answer", TypeError(type(body).__name__))
                self._object_info = body
            return self._object_info

    def invalidate_object_info(self) -> None:
        """Forget the cached node list (after installing node packs or a restart)."""
        self._object_info = None

    async def node_info(self, class_type: str) -> dict[str, Any] | None:
        """One node class's definition, or None when the server does not have it."""
        if self._object_info is not None:
            return self._object_info.get(class_type)
        body = await self.get_json(f"/object_info/{quote(class_type, safe='')}")
        return body.get(class_type) if isinstance(body, dict) else None

    async def models(self, folder: str | None = None) -> list[str]:
        """Model folder names, or the files in one folder (e.g. "checkpoints")."""
        path = "/models" if folder is None else f"/models/{quote(folder, safe='')}"
        return await self._names(path)

    async def embeddings(self) -> list[str]:
        """Embedding names."""
        return await self._names("/embeddings")

    async def extensions(self) -> list[str]:
        """Frontend extension script paths (custom node packs that ship web code show up here)."""
        return await self._names("/extensions")

    async def _names(self, path: str) -> list[str]:
        """A JSON list of names; anything else is a ``BadResponse`` (iterating an object would
        silently give its keys)."""
        body = await self.get_json(path)
        if not isinstance(body, list):
            raise self._shape_error(f"{path} answer", TypeError(f"a list was expected, not {type(body).__name__}"))
        return [str(v) for v in body]

    async def features(self) -> dict[str, Any]:
        """Server feature flags (e.g. whether ComfyUI-Manager v4 is enabled)."""
        return dict(await self.get_json("/features"))

    async def queue_remaining(self) -> int:
        """``GET /prompt``: how many prompts are running or waiting."""
        body = await self.get_json("/prompt")
        return int(body.get("exec_info", {}).get("queue_remaining", 0))

    async def queue(self) -> QueueState:
        """Running and pending prompts, oldest first."""
        body = await self.get_json("/queue")
        try:
            return QueueState.from_wire(body)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise self._shape_error("/queue answer", exc) from None

    async def history(self, prompt_id: str | None = None, max_items: int | None = None) -> dict[str, HistoryEntry]:
        """Finished prompts by id: one (``prompt_id``) or the newest ``max_items``."""
        path = "/history" if prompt_id is None else f"/history/{quote(prompt_id, safe='')}"
        params = {"max_items": max_items} if max_items is not None and prompt_id is None else None
        body = await self.get_json(path, params=params)
        try:
            return {pid: HistoryEntry.from_wire(pid, data) for pid, data in body.items()}
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise self._shape_error("/history answer", exc) from None

    async def has_jobs(self) -> bool:
        """Whether the server has ``/api/jobs`` (ComfyUI 0.8.0 and newer); asked once."""
        if self._has_jobs is None:
            response = await self.request("GET", "/api/jobs", params={"limit": 1})
            self._has_jobs = response.status_code == 200 and _json_has(response, "jobs")
        return self._has_jobs

    async def jobs(self, statuses: list[str] | None = None, limit: int | None = None,
                   offset: int = 0) -> JobsPage:
        """``GET /api/jobs``: running, pending and finished prompts, newest first.

        ``statuses`` filters ("pending", "in_progress", "completed", "failed").
        Raises ``ServerError`` (404) on a server without the route; ``has_jobs`` tells first.
        """
        params: dict[str, Any] = {"offset": offset}
        if statuses:
            params["status"] = ",".join(statuses)
        if limit is not None:
            params["limit"] = limit
        body = await self.get_json("/api/jobs", params=params)
        try:
            return JobsPage.from_wire(body)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise self._shape_error("/api/jobs answer", exc) from None

    async def job(self, prompt_id: str) -> Job | None:
        """``GET /api/jobs/{id}``: one prompt wherever it is (queue or history); None when unknown."""
        path = f"/api/jobs/{quote(prompt_id, safe='')}"
        response = await self.request("GET", path)
        if response.status_code == 404 and _json_has(response, "error"):
            return None
        if not response.is_success:
            raise self._unexpected("GET", path, response)
        try:
            return Job.from_wire(self._decode("GET", path, response))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise self._shape_error(f"{path} answer", exc) from None

    async def finished_entry(self, prompt_id: str) -> HistoryEntry | None:
        """The history entry of a finished prompt: from ``/api/jobs/{id}`` where the server has it,
        else from ``/history/{id}``; None while it is still queued or running, or when unknown."""
        if await self.has_jobs():
            job = await self.job(prompt_id)
            return job.history_entry() if job is not None else None
        return (await self.history(prompt_id)).get(prompt_id)

    async def submit(self, prompt: dict[str, Any], extra_data: dict[str, Any] | None = None,
                     front: bool = False, prompt_id: str | None = None) -> SubmitResult:
        """Queue an API-format prompt; raises ``PromptRejected`` with the validation report.

        ``prompt_id`` lets the caller choose the id (ComfyUI accepts one), so it can
        follow the prompt's events before this call returns.
        """
        payload: dict[str, Any] = {"prompt": prompt, "client_id": self.client_id}
        if prompt_id is not None:
            payload["prompt_id"] = prompt_id
        if extra_data:
            payload["extra_data"] = extra_data
        if front:
            payload["front"] = True
        # Python's own encoding, not httpx's strict one: ComfyUI parses Infinity/NaN (it is Python too)
        # and answers a non-finite widget value with a validation report that names the input.
        body = json.dumps(payload).encode()
        response = await self.request("POST", "/prompt", content=body, headers={"Content-Type": "application/json"})
        if response.status_code == 400:
            body = self._decode("POST", "/prompt", response)
            if not isinstance(body, dict):
                raise self._unexpected("POST", "/prompt", response)
            report = ValidationReport.from_wire(body)
            raise PromptRejected(_rejection_message(report), report=report)
        if response.status_code != 200:
            raise self._unexpected("POST", "/prompt", response)
        body = self._decode("POST", "/prompt", response)
        try:
            return SubmitResult(prompt_id=str(body["prompt_id"]), number=int(body["number"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise self._shape_error("/prompt answer", exc) from None

    async def delete(self, prompt_ids: list[str]) -> None:
        """Remove pending prompts from the queue (a running one needs ``interrupt``)."""
        await self.post_json("/queue", {"delete": list(prompt_ids)})

    async def clear_queue(self) -> None:
        """Remove every pending prompt."""
        await self.post_json("/queue", {"clear": True})

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop the running prompt; with ``prompt_id``, only if that one is running."""
        await self.post_json("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    async def cancel_job(self, prompt_id: str) -> bool:
        """``POST /api/jobs/{id}/cancel``, where the server offers it: one pending or running prompt,
        atomically. Returns False (and remembers) when this server has no such route."""
        if self._has_job_cancel is False:
            return False
        path = f"/api/jobs/{quote(prompt_id, safe='')}/cancel"
        response = await self.request("POST", path)
        if response.status_code in (404, 405) and not _json_has(response, "error"):
            self._has_job_cancel = False
            return False
        if not response.is_success and response.status_code != 404:
            raise self._unexpected("POST", path, response)
        self._has_job_cancel = True
        return True

    async def free(self, unload_models: bool = True, free_memory: bool = True) -> None:
        """Ask the server to unload models and/or free cached memory."""
        await self.post_json("/free", {"unload_models": unload_models, "free_memory": free_memory})

    async def view(self, filename: str, subfolder: str = "", type: str = "output",
                   preview: str | None = None) -> bytes:
        """The bytes of an output, input or temp file.

        ``preview`` (e.g. "webp;50" or "jpeg;80") asks the server for a smaller re-encoded copy of an
        image, as the official frontend does for thumbnails.
        """
        params = {"filename": filename, "subfolder": subfolder, "type": type}
        if preview is not None:
            params["preview"] = preview
        # An output may be a large video over a slow link: more time than an API call, still bounded.
        response = await self.request("GET", "/view", params=params, deadline=self.timeout * VIEW_DEADLINE_FACTOR)
        if response.status_code == 400:
            raise ServerError(
                f"ComfyUI refused to serve {filename!r} (400): the name must be a plain file inside its "
                "output/input/temp folder, without '..' or absolute paths",
                status=400, body=self._said(response))
        if response.status_code == 404:
            where = f"{type}/{subfolder + '/' if subfolder else ''}{filename}"
            raise ServerError(f"ComfyUI at {self.shown_url} has no file {where} (404) — was it deleted?",
                              status=404, body=self._said(response))
        if response.status_code != 200:
            raise self._unexpected("GET", "/view", response)
        return response.content

    async def upload_image(self, data: bytes, filename: str, subfolder: str = "", overwrite: bool = False) -> dict:
        """Put an image into the server's input folder; returns ``{"name", "subfolder", "type"}``."""
        response = await self.request(
            "POST", "/upload/image",
            files={"image": (filename, data)},
            data={"subfolder": subfolder, "type": "input", "overwrite": "true" if overwrite else "false"},
        )
        if response.status_code != 200:
            raise self._unexpected("POST", "/upload/image", response)
        return dict(self._decode("POST", "/upload/image", response))

    async def logs(self) -> list[LogEntry]:
        """The server's recent console output (``/internal/logs/raw``)."""
        body = await self.get_json("/internal/logs/raw")
        try:
            return [LogEntry(t=str(e.get("t", "")), m=str(e.get("m", ""))) for e in body["entries"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise self._shape_error("/internal/logs/raw answer", exc) from None

    async def subscribe_logs(self, enabled: bool = True) -> bool:
        """Ask for the server's console as ``logs`` websocket events (``PATCH /internal/logs/subscribe``).

        Returns False when the server has no such route; then poll :meth:`logs` instead.
        """
        response = await self.request("PATCH", "/internal/logs/subscribe",
                                      json={"clientId": self.client_id, "enabled": enabled})
        if response.status_code in (404, 405):
            return False
        if not response.is_success:
            raise self._unexpected("PATCH", "/internal/logs/subscribe", response)
        return True

    def ws_url(self) -> str:
        """The websocket address for this client's id: ``ws(s)://host/ws?clientId=…``."""
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = parts.path.rstrip("/") + "/ws"
        return urlunsplit((scheme, parts.netloc, path, f"clientId={quote(self.client_id)}", ""))


#: Where ComfyUI-Manager's routes live (v4 under /v2, older versions at the root).
_MANAGER_PATHS = ("/v2/manager", "/v2/customnode", "/v2/snapshot", "/v2/externalmodel", "/manager",
                  "/customnode", "/snapshot", "/externalmodel", "/api/manager", "/api/v2/")


def _json_has(response: httpx.Response, key: str) -> bool:
    """True when the body is a JSON object with ``key`` (ComfyUI's own answer, not a bare 404 page)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and key in body


def _from_comfyui(response: httpx.Response) -> bool:
    """True when a refusal came from ComfyUI's own aiohttp server, not from a proxy in front of it.

    ComfyUI answers its 403s with an empty or plain-text body and aiohttp's ``Server`` header; an
    auth proxy's refusal names itself (nginx, cloudflare...) or sends an HTML page.
    """
    server = response.headers.get("server", "").lower()
    html = "html" in response.headers.get("content-type", "").lower()
    return "aiohttp" in server and not html


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _BODY_SNIPPET else text[:_BODY_SNIPPET] + "…"


def _rejection_message(report: ValidationReport) -> str:
    lines = report.describe()
    return "ComfyUI rejected the prompt: " + "; ".join(lines)

