"""ComfyUI-Manager (v4 API) on a server: detect it, queue pack and model installs,
follow the tasks and restart the server.

Task results arrive only over the websocket (``cm-task-started`` /
``cm-task-completed``); the Manager keeps no per-task history we could poll, so
when the socket is unavailable we poll ``queue/status`` and learn that the
queue finished, not how each task ended.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import AuthRequired, ComfyError, ServerError, ServerUnreachable
from pistachio_tui.comfy.events import Connected, Event, Unknown
from pistachio_tui.comfy.stream import EventStream
from pistachio_tui.config import scrub_secrets
from pistachio_tui.fix.importfail import ImportFailure, ServerPaths, log_text, parse_import_failures, server_paths
from pistachio_tui.fix.nodedb import NodePack


class ManagerError(ComfyError):
    """The Manager refused or failed a request; the message says what to do."""


@dataclass(frozen=True)
class QueueStatus:
    """``/v2/manager/queue/status``."""

    total_count: int
    done_count: int
    in_progress_count: int
    pending_count: int
    is_processing: bool

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> QueueStatus:
        return cls(
            total_count=int(body.get("total_count", 0)),
            done_count=int(body.get("done_count", 0)),
            in_progress_count=int(body.get("in_progress_count", 0)),
            pending_count=int(body.get("pending_count", 0)),
            is_processing=bool(body.get("is_processing", False)),
        )

    @property
    def idle(self) -> bool:
        # ``is_processing`` stays true for a while after the last task: the counts are what matter.
        return self.total_count == 0 and self.in_progress_count == 0 and self.pending_count == 0


@dataclass(frozen=True)
class TaskResult:
    """How one queued task ended; ``ok`` is None when only polling saw it finish."""

    ui_id: str
    kind: str
    ok: bool | None
    result: str
    messages: tuple[str, ...] = ()

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> TaskResult:
        status = data.get("status") or {}
        result = str(data.get("result", ""))
        ok = status.get("status_str") == "success" if status else result == "success"
        return cls(str(data.get("ui_id")), str(data.get("kind", "")), ok, result,
                   tuple(str(m) for m in status.get("messages") or ()))


@dataclass(frozen=True)
class TaskEvent:
    """A Manager task started or completed, for progress display."""

    ui_id: str
    kind: str
    state: str  # "started" | "completed"
    result: TaskResult | None = None


@dataclass
class InstallSpec:
    """The ``params`` of a Manager ``install`` task."""

    id: str
    selected_version: str = "latest"
    version: str = "1.0.0"
    repository: str | None = None
    mode: str = "cache"
    channel: str = "default"

    def params(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "selected_version": self.selected_version,
            "mode": self.mode,
            "channel": self.channel,
        }
        if self.repository:
            body["repository"] = self.repository
        return body


def install_specs(pack: NodePack, mode: str = "cache") -> list[InstallSpec]:
    """Ways to name ``pack`` to the Manager, most likely first.

    The Manager resolves ``id@latest`` through the Comfy registry, whose ids are
    by convention the lower-cased repository name, and ``id@nightly`` through its
    own list, keyed by the repository name, cloning the repository itself.
    """
    registry_id = pack.registry_id or pack.repo_name.lower()
    specs = [InstallSpec(registry_id, "latest", mode=mode)]
    if pack.is_git:
        specs.append(InstallSpec(pack.repo_name, "nightly", repository=pack.url, mode=mode))
    return specs


StreamFactory = Callable[[ComfyClient], Any]


class ManagerClient:
    """The ComfyUI-Manager API of one server, through its ``ComfyClient``."""

    def __init__(self, client: ComfyClient, *, stream_factory: StreamFactory = EventStream) -> None:
        self.client = client
        self._stream_factory = stream_factory

    async def _text(self, path: str) -> str | None:
        response = await self.client.request("GET", path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ManagerError(f"ComfyUI-Manager answered {response.status_code} to GET {path}.")
        return response.text.strip().strip('"')

    async def version(self) -> str | None:
        """The Manager's version (``"V4.0.4"``), or None when the server has no Manager."""
        return await self._text("/v2/manager/version")

    async def db_mode(self) -> str | None:
        """Where the Manager reads its lists: ``cache``, ``local`` or ``remote``."""
        return await self._text("/v2/manager/db_mode")

    async def installed(self) -> dict[str, Any]:
        """Installed packs, keyed by pack name."""
        return dict(await self.client.get_json("/v2/customnode/installed") or {})

    async def mappings(self, mode: str = "cache") -> dict[str, Any]:
        """The node map (``{url: [[classes], {title_aux, nodename_pattern}]}``)."""
        return dict(await self.client.get_json("/v2/customnode/getmappings", params={"mode": mode}))

    async def queue_status(self) -> QueueStatus:
        return QueueStatus.from_wire(await self.client.get_json("/v2/manager/queue/status"))

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> int:
        response = await self.client.request("POST", path, json=body if body is not None else {})
        if response.status_code not in (200, 201):
            said = scrub_secrets(response.text.strip(), self.client.headers.values())[:300]
            raise ManagerError(f"ComfyUI-Manager refused POST {path} ({response.status_code}): {said or 'no details'}")
        return response.status_code

    async def queue_install(self, spec: InstallSpec, ui_id: str | None = None) -> str:
        """Queue an ``install`` task; returns its ``ui_id``. Call :meth:`start` to run the queue."""
        ui_id = ui_id or f"pistachio-{uuid.uuid4().hex[:8]}"
        await self._post("/v2/manager/queue/task", {
            "ui_id": ui_id, "client_id": self.client.client_id, "kind": "install", "params": spec.params(),
        })
        return ui_id

    async def queue_install_model(self, *, name: str, type: str, url: str, filename: str,
                                  save_path: str = "default", base: str = "", ui_id: str | None = None) -> str:
        """Queue a model download by the Manager into ``models/<save_path>``; returns the ``ui_id``."""
        ui_id = ui_id or f"pistachio-{uuid.uuid4().hex[:8]}"
        await self._post("/v2/manager/queue/install_model", {
            "client_id": self.client.client_id, "ui_id": ui_id, "name": name, "type": type,
            "base": base, "save_path": save_path, "url": url, "filename": filename,
        })
        return ui_id

    async def start(self) -> None:
        """Start the task queue (200 started, 201 already running)."""
        response = await self.client.request("POST", "/v2/manager/queue/start", json={})
        if response.status_code == 405:
            # Early v4 releases only routed GET for this endpoint.
            response = await self.client.request("GET", "/v2/manager/queue/start")
        if response.status_code not in (200, 201):
            raise ManagerError(f"ComfyUI-Manager would not start its queue ({response.status_code}).")

    async def reboot(self) -> None:
        """Ask the server to restart; the connection usually drops, which is expected."""
        try:
            await self._post("/v2/manager/reboot")
        except AuthRequired:
            raise ManagerError(
                "ComfyUI-Manager refused to restart the server (its security_level forbids it); "
                "restart ComfyUI by hand.") from None
        except (ServerUnreachable, ServerError):
            return

    async def run(self, ui_ids: list[str], *, timeout: float = 900.0, poll_interval: float = 2.0,
                  on_event: Callable[[TaskEvent], None] | None = None) -> dict[str, TaskResult]:
        """Start the queue and wait for the tasks ``ui_ids`` to finish.

        Follows the websocket for per-task results and polls ``queue/status``
        alongside; tasks seen finishing only by polling get ``ok=None``.
        """
        results: dict[str, TaskResult] = {}
        wanted = set(ui_ids)
        baseline = (await self.queue_status()).done_count
        stream = self._stream_factory(self.client)
        connected = asyncio.Event()
        listener = asyncio.create_task(self._listen(stream, wanted, results, connected, on_event))
        try:
            try:
                await asyncio.wait_for(connected.wait(), min(10.0, timeout))
            except TimeoutError:
                pass
            await self.start()
            deadline = time.monotonic() + timeout
            while not wanted <= results.keys():
                if listener.done():
                    await asyncio.sleep(poll_interval)
                else:
                    await asyncio.wait({listener}, timeout=poll_interval)
                if wanted <= results.keys():
                    break
                status = await self.queue_status()
                if status.idle and status.done_count >= baseline + len(wanted):
                    for ui_id in wanted - results.keys():
                        results[ui_id] = TaskResult(ui_id, "", None, "finished (result not reported)")
                    break
                if time.monotonic() > deadline:
                    raise ManagerError(
                        f"ComfyUI-Manager tasks still not finished after {timeout:g} s; check the server "
                        "log, then run the fix again."
                    )
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            close = getattr(stream, "close", None)
            if close is not None:
                await close()
        return {u: results[u] for u in ui_ids}

    async def _listen(self, stream: AsyncIterator[Event], wanted: set[str], results: dict[str, TaskResult],
                      connected: asyncio.Event, on_event: Callable[[TaskEvent], None] | None) -> None:
        started = False
        async for event in stream:
            if isinstance(event, Connected):
                connected.set()
            if not isinstance(event, Unknown) or not isinstance(event.data, dict):
                continue
            if event.type == "cm-queue-status" and event.data.get("status") == "all-done" and started:
                # The queue ran dry after ours began: tasks whose completion we missed are over too.
                for ui_id in wanted - results.keys():
                    results[ui_id] = TaskResult(ui_id, "", None, "finished (result not reported)")
                return
            ui_id = str(event.data.get("ui_id"))
            if ui_id not in wanted:
                continue
            kind = str(event.data.get("kind", ""))
            if event.type == "cm-task-started":
                started = True
                if on_event:
                    on_event(TaskEvent(ui_id, kind, "started"))
            elif event.type == "cm-task-completed":
                results[ui_id] = TaskResult.from_event(event.data)
                if on_event:
                    on_event(TaskEvent(ui_id, kind, "completed", results[ui_id]))
                if wanted <= results.keys():
                    return

    async def import_failures(self) -> list[ImportFailure]:
        """Packs that failed to import at the last start, from ``/internal/logs/raw``."""
        return parse_import_failures(log_text(await self.client.logs()))

    async def paths(self) -> ServerPaths:
        """The server's Python and ComfyUI folder, from its log."""
        return server_paths(log_text(await self.client.logs()))

