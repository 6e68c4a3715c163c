"""Async REST client for one ComfyUI server.

One ``httpx.AsyncClient`` per server, a timeout on every request, and every
failure turned into a typed ``ComfyError`` whose message says what to check.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from pistachio_tui.comfy.errors import (
    AuthRequired,
    BadResponse,
    PromptRejected,
    ServerError,
    ServerUnreachable,
)
from pistachio_tui.comfy.types import (
    HistoryEntry,
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
                                       transport=transport)
        self._object_info: dict[str, dict[str, Any]] | None = None
        self._object_info_lock = asyncio.Lock()

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

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; a network failure or a 401/403/5xx becomes a ``ComfyError``.

        Other 4xx answers are returned, because their meaning depends on the endpoint.
        """
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ServerUnreachable(
                f"ComfyUI at {self.shown_url} did not answer within {self.timeout:g} s — "
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
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
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
        return [str(v) for v in await self.get_json(path)]

    async def embeddings(self) -> list[str]:
        """Embedding names."""
        return [str(v) for v in await self.get_json("/embeddings")]

    async def extensions(self) -> list[str]:
        """Frontend extension script paths (custom node packs that ship web code show up here)."""
        return [str(v) for v in await self.get_json("/extensions")]

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
        response = await self.request("POST", "/prompt", json=payload)
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

    async def free(self, unload_models: bool = True, free_memory: bool = True) -> None:
        """Ask the server to unload models and/or free cached memory."""
        await self.post_json("/free", {"unload_models": unload_models, "free_memory": free_memory})

    async def view(self, filename: str, subfolder: str = "", type: str = "output",
                   preview: str | None = None) -> bytes:
        """The bytes of an output, input or temp file.

        ``preview`` (``"webp;50"``: format and quality) asks the server to re-encode
        an image smaller, as ComfyUI's web UI does for its thumbnails.
        """
        params = {"filename": filename, "subfolder": subfolder, "type": type}
        if preview is not None:
            params["preview"] = preview
        response = await self.request("GET", "/view", params=params)
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

    def ws_url(self) -> str:
        """The websocket address for this client's id: ``ws(s)://host/ws?clientId=…``."""
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = parts.path.rstrip("/") + "/ws"
        return urlunsplit((scheme, parts.netloc, path, f"clientId={quote(self.client_id)}", ""))


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _BODY_SNIPPET else text[:_BODY_SNIPPET] + "…"


def _rejection_message(report: ValidationReport) -> str:
    lines = report.describe()
    return "ComfyUI rejected the prompt: " + "; ".join(lines)

