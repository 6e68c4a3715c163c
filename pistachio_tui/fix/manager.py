"""ComfyUI-Manager on a server, whichever version it runs: detect it, queue pack
and model installs, follow each task to its result, restart the server.

Three lines are in use, and they differ in where their routes live, how a
pack install is queued and which HTTP method changes state:

- **3.x**, git-installed in ``custom_nodes/`` (most pods and local installs):
  routes without ``/v2`` (``/manager/*``, ``/customnode/*``), installs queued
  with ``POST /manager/queue/install``; ``queue/start``, ``queue/reset`` and
  ``reboot`` are ``GET`` up to 3.39 and ``POST`` from 3.40 on. Per-task
  results arrive in the ``cm-queue-status`` ``done`` message
  (``nodepack_result`` / ``model_result`` keyed by ``ui_id``), broadcast to
  every client.
- **4.0 – 4.1**, the pip package started with ``--enable-manager``: ``/v2``
  routes, installs queued with ``POST /v2/manager/queue/task``, state changes
  by ``GET``; results as ``cm-task-completed`` to the queuing client. Its
  ``queue/history`` answers 400 (it cannot serialise its own records).
- **4.2.1+**: as 4.0, but state changes are ``POST`` and ``/features``
  announces ``extension.manager.supports_csrf_post``; ``queue/history?ui_id=``
  works.

A 4.x Manager started with ``--enable-manager-legacy-ui`` speaks the 3.x
queue under ``/v2``. Sources: ``glob/manager_server.py`` of the git line (tags
3.39 / 3.40 / HEAD), ``comfyui_manager/glob/manager_server.py`` and
``legacy/manager_server.py`` of the 4.0.4 and 4.2.1 packages.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import AuthRequired, ComfyError, ServerError, ServerUnreachable
from pistachio_tui.comfy.events import Connected, Event, Unknown
from pistachio_tui.comfy.stream import EventStream
from pistachio_tui.fix.importfail import ImportFailure, ServerPaths, log_text, parse_import_failures, server_paths
from pistachio_tui.fix.nodedb import NodePack
from pistachio_tui.remedies import Need

#: Where the Manager's security policy is explained (its README section).
SECURITY_DOC = "https://github.com/ltdrdata/ComfyUI-Manager#security-policy"
_VERSION = re.compile(r"^V?(\d+)\.(\d+)(?:\.(\d+))?")
_NETWORK_MODE = re.compile(r"\[ComfyUI-Manager\] network_mode: (\w+)")


class ManagerError(ComfyError):
    """The Manager refused or failed a request; the message says what to do.

    ``needs`` names what the person could give so the step works without the Manager
    (each front end words it: a flag, a setting).
    """

    def __init__(self, message: str, needs: Need | None = None) -> None:
        super().__init__(message)
        self.needs = needs


class ManagerForbidden(ManagerError):
    """The Manager's security policy refuses this kind of request: retrying another way will not help."""


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``"V4.0.4"`` → ``(4, 0, 4)``; None for anything that is not a Manager version."""
    match = _VERSION.match(text.strip())
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


@dataclass(frozen=True)
class Dialect:
    """How to talk to one Manager: route prefix, install API and state-change method."""

    version: str
    #: ``""`` for the 3.x line, ``"/v2"`` for 4.x.
    prefix: str
    #: True: installs go to ``queue/install`` with the 3.x body; False: ``queue/task``.
    legacy_queue: bool
    #: The method of ``queue/start``, ``queue/reset`` and ``reboot``.
    state_method: str

    @property
    def label(self) -> str:
        line = "3.x" if not self.prefix else ("4.x legacy UI" if self.legacy_queue else "4.x")
        return f"ComfyUI-Manager {self.version} ({line}, state changes by {self.state_method})"

    def path(self, route: str) -> str:
        return f"{self.prefix}{route}"


def dialect_for(version: str, *, v2: bool, csrf_post: bool = False, legacy_ui: bool = False) -> Dialect:
    """The dialect of a Manager that said ``version`` on ``/v2/manager/version`` (``v2``) or ``/manager/version``."""
    numbers = parse_version(version) or (0, 0, 0)
    if v2:
        post = csrf_post or numbers >= (4, 2, 1)
        return Dialect(version, "/v2", legacy_ui, "POST" if post else "GET")
    return Dialect(version, "", True, "POST" if numbers >= (3, 40, 0) else "GET")


@dataclass(frozen=True)
class QueueStatus:
    """``queue/status``: 4.x counts only what is queued or running in ``total_count``;
    3.x counts the finished tasks of the current run there too, and has no ``pending_count``."""

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
        # ``is_processing`` stays true for a while after the last task on 4.x: the counts are what matter.
        return self.total_count == 0 and self.in_progress_count == 0 and self.pending_count == 0

    def finished(self, baseline: int, count: int, legacy: bool) -> bool:
        """Whether ``count`` tasks queued after ``baseline`` finished tasks are all done."""
        if legacy:
            # The 3.x worker thread ends when its queue is empty; its results restart at zero.
            return not self.is_processing and self.done_count >= count
        return self.idle and self.done_count >= baseline + count


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
        ok = status.get("status_str") in ("success", "skip") if status else result in ("success", "skip")
        return cls(str(data.get("ui_id")), str(data.get("kind", "")), ok, result,
                   tuple(str(m) for m in status.get("messages") or ()))

    @classmethod
    def from_legacy(cls, ui_id: str, kind: str, value: Any) -> TaskResult:
        # 3.x results are a message string, or for updates a dict with ``msg``.
        text = str(value.get("msg", "")) if isinstance(value, dict) else str(value)
        return cls(ui_id, kind, text in ("success", "skip"), text)


@dataclass(frozen=True)
class TaskEvent:
    """A Manager task started or completed, for progress display."""

    ui_id: str
    kind: str
    state: str  # "started" | "completed"
    result: TaskResult | None = None


@dataclass
class InstallSpec:
    """A pack install: the registry id (or repository name) and the version to take."""

    id: str
    selected_version: str = "latest"
    version: str = "1.0.0"
    repository: str | None = None
    mode: str = "cache"
    channel: str = "default"

    def params(self) -> dict[str, Any]:
        """The ``params`` of a 4.x ``install`` task."""
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

    def legacy_body(self, ui_id: str) -> dict[str, Any]:
        """The body of a 3.x ``queue/install``: ``version`` names the registry entry, and
        ``unknown`` (a pack only known by its repository) installs from ``files``."""
        body = {**self.params(), "ui_id": ui_id, "skip_post_install": False, "pip": []}
        if self.selected_version == "unknown":
            body["version"] = "unknown"
            body["files"] = [self.repository]
        return body

    @property
    def shown(self) -> str:
        return f"{self.id}@{self.selected_version}"


def install_specs(pack: NodePack, mode: str = "cache") -> list[InstallSpec]:
    """Ways to name ``pack`` to the Manager, most likely first.

    A pinned registry version (from the workflow's ``cnr_id`` / ``ver``) comes
    first. The Manager resolves ``id@latest`` through the Comfy registry, whose
    ids are by convention the lower-cased repository name, and ``id@nightly``
    through its own list, keyed by the repository name, cloning the repository.
    """
    registry_id = pack.registry_id or pack.repo_name.lower()
    specs = []
    if pack.registry_id and pack.version:
        specs.append(InstallSpec(registry_id, pack.version, mode=mode))
    if pack.registry_id or pack.is_git:
        specs.append(InstallSpec(registry_id, "latest", mode=mode))
    if pack.is_git:
        specs.append(InstallSpec(pack.repo_name, "nightly", repository=pack.url, mode=mode))
    return specs


StreamFactory = Callable[[ComfyClient], Any]


class ManagerClient:
    """The ComfyUI-Manager of one server, through its ``ComfyClient``.

    ``dialect`` is found on first use (:meth:`detect`) unless given.
    """

    def __init__(self, client: ComfyClient, *, dialect: Dialect | None = None,
                 stream_factory: StreamFactory = EventStream) -> None:
        self.client = client
        self.dialect = dialect
        self._detected = dialect is not None
        self._stream_factory = stream_factory
        self._network_mode: str | None = None

    # ------------------------------------------------------------ detection

    async def _text(self, path: str) -> str | None:
        response = await self.client.request("GET", path)
        if response.status_code != 200:
            return None
        return response.text.strip().strip('"')

    async def detect(self) -> Dialect | None:
        """Which Manager the server runs, from what it answers; None when it has none."""
        if self._detected:
            return self.dialect
        version = await self._text("/v2/manager/version")
        if version is not None and parse_version(version):
            features = await self._features()
            manager_flags = (features.get("extension") or {}).get("manager") or {}
            legacy = await self._legacy_ui()
            self.dialect = dialect_for(version, v2=True, csrf_post=bool(manager_flags.get("supports_csrf_post")),
                                       legacy_ui=legacy)
        else:
            version = await self._text("/manager/version")
            self.dialect = dialect_for(version, v2=False) if version and parse_version(version) else None
        self._detected = True
        return self.dialect

    async def _features(self) -> dict[str, Any]:
        try:
            features = await self.client.features()
        except ComfyError:
            return {}
        return features if isinstance(features, dict) else {}

    async def _legacy_ui(self) -> bool:
        response = await self.client.request("GET", "/v2/manager/is_legacy_manager_ui")
        if response.status_code != 200:
            return False
        try:
            return bool(response.json().get("is_legacy_manager_ui"))
        except (ValueError, AttributeError):
            return False

    async def _dialect(self) -> Dialect:
        dialect = await self.detect()
        if dialect is None:
            raise ManagerError(f"No ComfyUI-Manager answers at {self.client.shown_url}.")
        return dialect

    async def version(self) -> str | None:
        """The Manager's version (``"V4.0.4"``), or None when the server has no Manager."""
        dialect = await self.detect()
        return dialect.version if dialect else None

    async def network_mode(self) -> str | None:
        """The Manager's ``network_mode`` as it logged it at start (``public``, ``offline``…)."""
        if self._network_mode is None:
            try:
                found = _NETWORK_MODE.findall(log_text(await self.client.logs()))
            except ComfyError:
                found = []
            self._network_mode = found[-1] if found else ""
        return self._network_mode or None

    # ------------------------------------------------------------ reading

    async def db_mode(self) -> str | None:
        """Where the Manager reads its lists: ``cache``, ``local`` or ``remote``."""
        return await self._text((await self._dialect()).path("/manager/db_mode"))

    async def installed(self) -> dict[str, Any]:
        """Installed packs, keyed by pack name."""
        dialect = await self._dialect()
        return dict(await self.client.get_json(dialect.path("/customnode/installed")) or {})

    async def mappings(self, mode: str = "cache") -> dict[str, Any]:
        """The node map (``{url or registry id: [[classes], {title_aux, nodename_pattern}]}``)."""
        dialect = await self._dialect()
        return dict(await self.client.get_json(dialect.path("/customnode/getmappings"), params={"mode": mode}))

    async def queue_status(self) -> QueueStatus:
        dialect = await self._dialect()
        return QueueStatus.from_wire(await self.client.get_json(dialect.path("/manager/queue/status")))

    async def task_history(self, ui_id: str) -> TaskResult | None:
        """One finished 4.x task from ``queue/history`` (None when the Manager cannot say: 4.0 answers 400)."""
        dialect = await self._dialect()
        if dialect.legacy_queue:
            return None
        response = await self.client.request("GET", dialect.path("/manager/queue/history"), params={"ui_id": ui_id})
        if response.status_code != 200:
            return None
        try:
            entry = response.json().get("history")
        except (ValueError, AttributeError):
            return None
        return TaskResult.from_event(entry) if isinstance(entry, dict) and entry.get("ui_id") else None

    # ------------------------------------------------------------ changing state

    async def _refusal(self, method: str, path: str, status: int, said: str) -> ManagerError:
        dialect = self.dialect
        who = dialect.label if dialect else "ComfyUI-Manager"
        if status == 403 or "security" in said.lower():
            mode = await self.network_mode()
            mode_note = f" It runs with network_mode = {mode}." if mode else ""
            return ManagerForbidden(
                f"{who} refused {method} {path} ({status}): its security_level forbids this. Installing and "
                "restarting need security_level = normal (or weak) in the Manager's config.ini; on 4.x, a server "
                f"listening beyond localhost also needs network_mode = personal_cloud.{mode_note} Stop ComfyUI, "
                f"edit config.ini, start it again — or do it by hand. ({SECURITY_DOC})")
        if dialect is not None and not dialect.prefix and path.endswith("/install_model") and status == 400:
            return ManagerError(
                f"{who} refused {method} {path} ({status}): {said or 'no details'}. The 3.x Manager only "
                "downloads files listed in its own model list; with the server's ComfyUI folder, Pistachio "
                "downloads the file there itself.", needs=Need.COMFY_DIR)
        return ManagerError(f"{who} refused {method} {path} ({status}): {said or 'no details'}.")

    async def _send(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, str]:
        kwargs: dict[str, Any] = {"json": body if body is not None else {}} if method == "POST" else {}
        try:
            response = await self.client.request(method, path, **kwargs)
        except AuthRequired:
            return 403, ""
        return response.status_code, self.client.scrub(response.text.strip())[:300]

    async def _post(self, route: str, body: dict[str, Any]) -> None:
        path = (await self._dialect()).path(route)
        status, said = await self._send("POST", path, body)
        if status not in (200, 201):
            raise await self._refusal("POST", path, status, said)

    async def _change(self, route: str) -> int:
        """A body-less state change (``queue/start``, ``queue/reset``, ``reboot``) with the
        dialect's method. A wrong guess is answered 405 (POST to a GET route) or 404 (GET to
        a POST route: ComfyUI's static files take every other GET), so the other method is
        tried once and kept."""
        dialect = await self._dialect()
        path = dialect.path(route)
        status, said = await self._send(dialect.state_method, path, None)
        if status in (404, 405):
            other = "GET" if dialect.state_method == "POST" else "POST"
            status, said = await self._send(other, path, None)
            if status not in (404, 405):
                self.dialect = replace(dialect, state_method=other)
            else:
                raise ManagerError(f"{dialect.label} routes {path} with neither GET nor POST ({status}): "
                                   "is this a Manager version Pistachio does not know?")
        if status not in (200, 201):
            raise await self._refusal((self.dialect or dialect).state_method, path, status, said)
        return status

    async def queue_install(self, spec: InstallSpec, ui_id: str | None = None) -> str:
        """Queue a pack install; returns its ``ui_id``. Call :meth:`run` to run the queue."""
        dialect = await self._dialect()
        ui_id = ui_id or f"pistachio-{uuid.uuid4().hex[:8]}"
        if dialect.legacy_queue:
            await self._post("/manager/queue/install", spec.legacy_body(ui_id))
        else:
            await self._post("/manager/queue/task", {
                "ui_id": ui_id, "client_id": self.client.client_id, "kind": "install", "params": spec.params(),
            })
        return ui_id

    async def queue_install_model(self, *, name: str, type: str, url: str, filename: str,
                                  save_path: str = "default", base: str = "", ui_id: str | None = None) -> str:
        """Queue a model download by the Manager into ``models/<save_path>``; returns the ``ui_id``.

        The 3.x line only downloads files listed in its own model list (400 otherwise)."""
        ui_id = ui_id or f"pistachio-{uuid.uuid4().hex[:8]}"
        await self._post("/manager/queue/install_model", {
            "client_id": self.client.client_id, "ui_id": ui_id, "name": name, "type": type,
            "base": base, "save_path": save_path, "url": url, "filename": filename,
        })
        return ui_id

    async def start(self) -> None:
        """Start the task queue (200 started, 201 already running)."""
        await self._change("/manager/queue/start")

    async def reset(self) -> None:
        """Drop the tasks still waiting in the queue."""
        await self._change("/manager/queue/reset")

    async def reboot(self) -> None:
        """Ask the server to restart. The connection usually drops, which is expected;
        a refusal raises :class:`ManagerError` at once, saying why."""
        try:
            await self._change("/manager/reboot")
        except (ServerUnreachable, ServerError):
            return

    # ------------------------------------------------------------ following tasks

    async def run(self, ui_ids: list[str], *, timeout: float = 900.0, poll_interval: float = 2.0,
                  on_event: Callable[[TaskEvent], None] | None = None) -> dict[str, TaskResult]:
        """Start the queue and wait for the tasks ``ui_ids`` to finish.

        Follows the websocket for per-task results and polls ``queue/status``
        alongside; a task seen finishing only by polling is looked up in the
        Manager's history, and gets ``ok=None`` when that cannot say.
        """
        dialect = await self._dialect()
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
                if status.finished(baseline, len(wanted), dialect.legacy_queue):
                    # The socket may still be delivering the last result: give it a moment.
                    await asyncio.wait({listener}, timeout=min(poll_interval, 0.5))
                    await self._fill_from_history(wanted, results)
                    break
                if time.monotonic() > deadline:
                    raise ManagerError(
                        f"ComfyUI-Manager tasks still not finished after {timeout:g} s; check the server "
                        "log, then run the fix again.")
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            close = getattr(stream, "close", None)
            if close is not None:
                await close()
        return {u: results[u] for u in ui_ids}

    async def _fill_from_history(self, wanted: set[str], results: dict[str, TaskResult]) -> None:
        for ui_id in sorted(wanted - results.keys()):
            found = await self.task_history(ui_id)
            results[ui_id] = found or TaskResult(ui_id, "", None, "finished (result not reported)")

    async def _listen(self, stream: AsyncIterator[Event], wanted: set[str], results: dict[str, TaskResult],
                      connected: asyncio.Event, on_event: Callable[[TaskEvent], None] | None) -> None:
        started = False

        def completed(result: TaskResult) -> None:
            results[result.ui_id] = result
            if on_event:
                on_event(TaskEvent(result.ui_id, result.kind, "completed", result))

        async for event in stream:
            if isinstance(event, Connected):
                connected.set()
            if not isinstance(event, Unknown) or not isinstance(event.data, dict):
                continue
            data = event.data
            if event.type == "cm-queue-status":
                status = data.get("status")
                if status in ("done", "batch-done"):
                    for key, kind in (("nodepack_result", "install"), ("model_result", "install-model")):
                        for ui_id, value in (data.get(key) or {}).items():
                            if ui_id in wanted and ui_id not in results:
                                completed(TaskResult.from_legacy(ui_id, kind, value))
                elif status == "in_progress" and data.get("target") in wanted and on_event:
                    on_event(TaskEvent(str(data["target"]), "", "started"))
                elif status == "all-done" and started:
                    # The queue ran dry after ours began: what we missed is over too.
                    await self._fill_from_history(wanted, results)
                    return
                if wanted <= results.keys():
                    return
                continue
            ui_id = str(data.get("ui_id"))
            if ui_id not in wanted:
                continue
            if event.type == "cm-task-started":
                started = True
                if on_event:
                    on_event(TaskEvent(ui_id, str(data.get("kind", "")), "started"))
            elif event.type == "cm-task-completed":
                completed(TaskResult.from_event(data))
                if wanted <= results.keys():
                    return

    # ------------------------------------------------------------ the server's own story

    async def explain(self, result: TaskResult) -> str:
        """A failed task's result, with the likely cause a person can act on."""
        text = result.result or "failed"
        if text == "failed":
            # 4.x workers answer a bare "failed" when the security policy forbids the task.
            return (f"the Manager refused the task (security policy): installing needs security_level = normal "
                    f"or weak, and network_mode = personal_cloud when ComfyUI listens beyond localhost "
                    f"({SECURITY_DOC})")
        if "Cannot resolve install target" in text and await self.network_mode() == "offline":
            return (f"{text} — the Manager runs with network_mode = offline and only knows packs already in its "
                    "cache; set network_mode = public in its config.ini, or install by hand")
        return text

    async def import_failures(self) -> list[ImportFailure]:
        """Packs that failed to import at the last start, from ``/internal/logs/raw``."""
        return parse_import_failures(log_text(await self.client.logs()))

    async def paths(self) -> ServerPaths:
        """The server's Python and ComfyUI folder, from its log."""
        return server_paths(log_text(await self.client.logs()))
