"""ComfyUI-Manager emulation: pack and model installs through the Manager's task queue,
in the dialect of the version it emulates.

- ``V4.0.4`` (default; the recorded traces): tasks are queued with
  POST /v2/manager/queue/task (or /queue/install_model), run once the queue is
  started, and report ``cm-task-started`` / ``cm-task-completed`` to the client
  that queued them, then ``cm-queue-status`` ``all-done`` to everyone. State
  changes (``queue/start``, ``queue/reset``, ``reboot``, ``db_mode``) are GET,
  and ``queue/history`` of a finished task answers 400, as 4.0.4 does
  (``comfyui_manager/glob/manager_server.py`` of the 4.0.4 package).
- ``V4.2.1`` and later: the same queue, state changes by POST (a simple-form
  Content-Type is refused with 400), ``/features`` announces
  ``extension.manager.supports_csrf_post`` and ``queue/history`` works
  (tag 4.2.1 of ComfyUI-Manager).
- ``V3.x`` (the git-installed line): routes without ``/v2``, installs queued
  with POST /manager/queue/install (pack fields in the body), state changes by
  GET before 3.40 and POST from 3.40 on, results broadcast in
  ``cm-queue-status`` ``in_progress`` (per task) and ``done`` (with
  ``nodepack_result`` / ``model_result``), model downloads only for files in
  its model list (``glob/manager_server.py``, tags 3.39 and HEAD).

With ``security_level="strong"`` reboots answer 403 and installs are refused
(3.x at the request, 4.x with a ``failed`` task result), as the real checks do.
An installed pack lands "on disk" at once (it is listed as installed) but its
node classes only load when the server restarts; a pack whose import fails
logs the failure at that restart instead.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import aiohttp
from aiohttp import web

from pistachio_tui.sim import catalog

if TYPE_CHECKING:
    from pistachio_tui.sim.server import SimServer

__all__ = ["ManagerEmulation", "MANAGER_VERSION"]

MANAGER_VERSION = "V4.0.4"
_SIMPLE_FORM_CONTENT_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
_SECURITY_ERROR = "A security error has occurred. Please check the terminal logs"
#: Task history kept (the Manager's own bound).
MAX_TASK_HISTORY = 1000
_KINDS = {"install", "uninstall", "update", "update-comfyui", "fix", "disable", "enable", "install-model"}
_INSTALL_PARAM_DEFAULTS = {
    "id": None, "version": None, "ui_id": None, "selected_version": None, "repository": None,
    "pip": None, "mode": None, "channel": None, "skip_post_install": None,
}
_MODEL_PARAM_DEFAULTS = {
    "name": None, "type": None, "base": None, "save_path": None, "url": None, "filename": None, "ui_id": None,
}
_REQUIRED_MODEL_FIELDS = ("name", "type", "url", "filename")
# The Manager's model type → folder table (``model_dir_name_map``).
_MODEL_TYPE_FOLDERS = {
    "checkpoints": "checkpoints", "checkpoint": "checkpoints", "unclip": "checkpoints",
    "text_encoders": "text_encoders", "clip": "text_encoders", "vae": "vae", "lora": "loras",
    "t2i-adapter": "controlnet", "t2i-style": "controlnet", "controlnet": "controlnet",
    "clip_vision": "clip_vision", "gligen": "gligen", "upscale": "upscale_models",
    "embedding": "embeddings", "embeddings": "embeddings", "unet": "diffusion_models",
    "diffusion_model": "diffusion_models",
}
_DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=300, sock_connect=10)


def _now() -> str:
    return datetime.now().isoformat()


def _norm_url(url: str) -> str:
    url = url.strip().lower().rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def _aux_id(pack: dict[str, Any]) -> str:
    return "/".join(pack["repository"].rstrip("/").split("/")[-2:])


def _version_numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.lstrip("Vv").split(".") if part.isdigit())


class ManagerEmulation:
    """The Manager's routes and task queue, attached to a :class:`SimServer`."""

    def __init__(self, server: SimServer, task_delay: float = 0.02, idle_exit: float = 0.1, *,
                 version: str = MANAGER_VERSION, security_level: str = "normal") -> None:
        self.server = server
        self.task_delay = task_delay
        self.idle_exit = idle_exit
        self.version = version
        self.security_level = security_level
        numbers = _version_numbers(version)
        #: The 3.x line: routes without ``/v2`` and the 3.x queue.
        self.legacy = numbers < (4,)
        self.prefix = "" if self.legacy else "/v2"
        self.state_method = "POST" if numbers >= ((3, 40) if self.legacy else (4, 2, 1)) else "GET"
        #: File names the 3.x line may download (its model list); others are refused.
        self.model_whitelist: set[str] = set()
        #: 3.x results of the current run, keyed by ``ui_id``.
        self.nodepack_result: dict[str, str] = {}
        self.model_result: dict[str, str] = {}
        self.catalogue = catalog.node_packs()
        self.installed: dict[str, dict[str, Any]] = {}
        self.imported: dict[str, dict[str, Any]] = {}
        self.pending: list[dict[str, Any]] = []
        self.running: dict[str, Any] | None = None
        self.history: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.batch_id: str | None = None
        self._worker: asyncio.Task[None] | None = None
        self._reboot_task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- packs

    def _installed_key(self, pack: dict[str, Any]) -> str:
        return pack["id"] if pack.get("registry", True) else pack["directory"]

    def _installed_packs(self) -> list[dict[str, Any]]:
        keys = set(self.installed)
        return [pack for pack in self.catalogue if self._installed_key(pack) in keys]

    def loadable_packs(self) -> list[dict[str, Any]]:
        """Installed packs whose import succeeds: their nodes load at the next start."""
        return [pack for pack in self._installed_packs() if not pack.get("import_error")]

    def broken_packs(self) -> list[dict[str, Any]]:
        """Installed packs whose import fails at start."""
        return [pack for pack in self._installed_packs() if pack.get("import_error")]

    def resolve(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The catalogue pack an install task names (registry id, ``author/repo``, or repository URL),
        if the version asked for exists (a registry version, ``latest`` or ``nightly``)."""
        ident = str(params.get("id") or "")
        repository = params.get("repository")
        wanted = params.get("selected_version")
        for pack in self.catalogue:
            registry = pack.get("registry", True)
            names = {pack["directory"].lower(), _aux_id(pack).lower()} | ({pack["id"]} if registry else set())
            if ident.lower() in names or _norm_url(ident) == _norm_url(pack["repository"]) or (
                    isinstance(repository, str) and _norm_url(repository) == _norm_url(pack["repository"])):
                if wanted == "latest" and not registry:
                    return None
                if registry and wanted not in (None, "latest", "nightly", "unknown", pack["version"]):
                    return None
                return pack
        return None

    def features(self, base: dict[str, Any]) -> dict[str, Any]:
        """``/features`` as ComfyUI serves it with this Manager loaded (4.2.1+ adds its CSRF flag)."""
        if self.legacy or self.state_method != "POST":
            return base
        extension = dict(base.get("extension") or {})
        extension["manager"] = {**extension.get("manager", {}), "supports_csrf_post": True}
        return {**base, "extension": extension}

    def mappings(self) -> dict[str, Any]:
        """GET /v2/customnode/getmappings: registry packs keyed by id, others by repository URL."""
        return {
            (pack["id"] if pack.get("registry", True) else pack["repository"]):
                [sorted(pack["nodes"]), {"title_aux": pack["title"]}]
            for pack in self.catalogue
        }

    def on_restart(self) -> None:
        """A restart empties the task queue and reloads what is installed."""
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        self.pending.clear()
        self.running = None
        self.history.clear()
        self.nodepack_result.clear()
        self.model_result.clear()
        self.batch_id = None
        self.imported = dict(self.installed)

    async def stop(self) -> None:
        for task in (self._worker, self._reboot_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._worker = None
        self._reboot_task = None

    # ----------------------------------------------------------------- queue

    def state(self) -> dict[str, Any]:
        """The ``state`` object the Manager attaches to its task messages."""
        return {
            "history": dict(self.history),
            "running_queue": [self.running] if self.running is not None else [],
            "pending_queue": list(self.pending),
            "installed_packs": dict(self.installed),
        }

    def put(self, task: dict[str, Any]) -> None:
        if self.batch_id is None and not self.pending and self.running is None:
            stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
            self.batch_id = f"batch_{stamp}_{uuid.uuid4().hex[:8]}"
        self.pending.append(task)

    def start_worker(self) -> bool:
        if self._worker is not None and not self._worker.done():
            return False
        self._worker = asyncio.create_task(self._work())
        return True

    async def _work(self) -> None:
        hub = self.server.hub
        while True:
            if not self.pending:
                await asyncio.sleep(self.idle_exit)
                if not self.pending:
                    break
                continue
            task = self.pending.pop(0)
            self.running = task
            if not self.legacy:
                hub.emit("cm-task-started", {
                    "ui_id": task["ui_id"], "kind": task["kind"], "timestamp": _now(), "state": self.state(),
                }, task["client_id"])
            result = await self._perform(task)
            if self.legacy:
                self._legacy_done(task, result)
                continue
            status_str = result if result in ("success", "skip") else "error"
            status = {"status_str": status_str, "completed": True, "messages": [] if status_str != "error" else [result]}
            now = _now()
            self.history[task["ui_id"]] = {
                "ui_id": task["ui_id"], "client_id": task["client_id"], "kind": task["kind"], "timestamp": now,
                "result": result, "status": status, "batch_id": self.batch_id, "end_time": now,
            }
            while len(self.history) > MAX_TASK_HISTORY:
                self.history.popitem(last=False)
            self.running = None
            hub.emit("cm-task-completed", {
                "ui_id": task["ui_id"], "result": result, "kind": task["kind"], "status": status,
                "timestamp": now, "state": self.state(),
            }, task["client_id"])
        self.batch_id = None
        self.server.log.write("\nAfter restarting ComfyUI, please refresh the browser.\n")
        if self.legacy:
            done = len(self.nodepack_result) + len(self.model_result)
            hub.emit("cm-queue-status", {"status": "done", "nodepack_result": dict(self.nodepack_result),
                                         "model_result": dict(self.model_result),
                                         "total_count": done, "done_count": done})
        else:
            hub.emit("cm-queue-status", {"status": "all-done"})

    def _legacy_done(self, task: dict[str, Any], result: str) -> None:
        """3.x: the result is kept for the ``done`` message, and every client hears progress."""
        results = self.model_result if task["kind"] == "install-model" else self.nodepack_result
        done = len(self.nodepack_result) + len(self.model_result)
        results[task["ui_id"]] = result
        self.running = None
        self.server.hub.emit("cm-queue-status", {
            "status": "in_progress", "target": task["ui_id"],
            "ui_target": "model_manager" if task["kind"] == "install-model" else "nodepack_manager",
            "total_count": done + 1 + len(self.pending), "done_count": done,
        })

    async def _perform(self, task: dict[str, Any]) -> str:
        await asyncio.sleep(self.task_delay)
        kind, params = task["kind"], task["params"]
        if kind == "install":
            return self._install(params)
        if kind == "install-model":
            return await self._install_model(params)
        if kind in ("uninstall", "disable"):
            name = str(params.get("node_name") or params.get("id") or "")
            pack = self.resolve({"id": name})
            if pack is not None:
                self.installed.pop(self._installed_key(pack), None)
            return "success"
        return "success"

    def _install(self, params: dict[str, Any]) -> str:
        if not self.legacy and self.security_level == "strong":
            return "failed"
        pack = self.resolve(params)
        if pack is None:
            return f"Cannot resolve install target: '{params.get('id')}@{params.get('selected_version')}'"
        registry = pack.get("registry", True)
        self.installed[self._installed_key(pack)] = {
            "ver": pack["version"] if registry else uuid.uuid5(uuid.NAMESPACE_URL, pack["repository"]).hex,
            "cnr_id": pack["id"] if registry else "",
            "aux_id": None if registry else _aux_id(pack),
            "enabled": True,
        }
        self.server.log.write(f"Install: {pack['title']}\n")
        return "success"

    async def _install_model(self, params: dict[str, Any]) -> str:
        url = str(params.get("url") or "")
        folder = self._model_folder(params)
        filename = str(params.get("filename") or "")
        if folder is None or not filename or any(c in filename for c in "/\\:"):
            return f"Model installation error: {url}"
        self.server.log.write(f"Install model '{params.get('name')}' from '{url}' into '{folder}/{filename}'\n")
        try:
            await self._download(url, folder, filename)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            return f"Model installation error: {url}"
        return "success"

    @staticmethod
    def _model_folder(params: dict[str, Any]) -> str | None:
        save_path = str(params.get("save_path") or "default")
        if save_path != "default":
            if ".." in save_path or save_path.startswith("/"):
                return "etc"
            if save_path.startswith("custom_nodes"):
                return None
            return save_path
        return _MODEL_TYPE_FOLDERS.get(str(params.get("type") or "").lower(), "etc")

    async def _download(self, url: str, folder: str, filename: str) -> None:
        models_dir = self.server.models_dir
        target: Path | None = None
        if models_dir is not None:
            target = models_dir / folder / filename
            target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part") if target is not None else None
        async with aiohttp.ClientSession(timeout=_DOWNLOAD_TIMEOUT) as session:
            async with session.get(url) as response:
                response.raise_for_status()
                if partial is None:
                    await response.read()
                else:
                    with partial.open("wb") as out:
                        async for chunk in response.content.iter_chunked(1 << 16):
                            out.write(chunk)
        if target is not None and partial is not None:
            partial.replace(target)
        else:
            # A save_path like "checkpoints/SD1.5" is a subfolder of a model folder.
            top, _, sub = folder.partition("/")
            self.server.add_model(top, f"{sub}/{filename}" if sub else filename)

    # ----------------------------------------------------------------- routes

    def add_routes(self, app: web.Application,
                   route: Callable[[web.Application, str, str, Any], None]) -> None:
        change = self.state_method
        routes: list[tuple[str, str, Any]] = [
            ("GET", "/manager/version", self._version),
            ("GET", "/manager/db_mode", self._db_mode),
            ("GET", "/customnode/installed", self._installed),
            ("GET", "/customnode/getmappings", self._getmappings),
            ("POST", "/customnode/import_fail_info", self._import_fail_info),
            ("GET", "/snapshot/getlist", self._snapshots),
            ("GET", "/manager/queue/status", self._queue_status),
            ("POST", "/manager/queue/install_model", self._queue_install_model),
            (change, "/manager/queue/start", self._queue_start),
            (change, "/manager/queue/reset", self._queue_reset),
            (change, "/manager/reboot", self._reboot),
        ]
        if self.legacy:
            routes.append(("POST", "/manager/queue/install", self._queue_legacy_install))
        else:
            routes += [
                ("GET", "/manager/is_legacy_manager_ui", self._legacy_ui),
                ("GET", "/manager/queue/history", self._queue_history),
                ("POST", "/manager/queue/task", self._queue_task),
            ]
            if change == "POST":
                routes.append(("POST", "/manager/db_mode", self._ok))
        if change == "POST":
            # A real ComfyUI serves its web folder for every other GET, so a GET to a
            # POST-only route finds no file: 404, where a POST to a GET route gets 405.
            routes += [("GET", path, self._not_found) for method, path, _ in routes if method == change]
        for method, path, handler in routes:
            route(app, method, self.prefix + path, self._gated(handler) if method == change else handler)

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="404: Not Found")

    def _gated(self, handler: Any) -> Any:
        """POST state changes of 3.40+ / 4.2.1+ refuse the Content-Types a cross-site form can send."""
        if self.state_method != "POST":
            return handler

        async def gated(request: web.Request) -> web.StreamResponse:
            if request.content_type in _SIMPLE_FORM_CONTENT_TYPES:
                return web.Response(
                    status=400, text="Invalid Content-Type for this endpoint. Use application/json or omit body.")
            return await handler(request)

        return gated

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _version(self, request: web.Request) -> web.Response:
        return web.Response(text=self.version)

    async def _db_mode(self, request: web.Request) -> web.Response:
        return web.Response(text="cache")

    async def _legacy_ui(self, request: web.Request) -> web.Response:
        return web.json_response({"is_legacy_manager_ui": False})

    async def _installed(self, request: web.Request) -> web.Response:
        if request.query.get("mode") == "imported":
            return web.json_response(self.imported)
        return web.json_response(self.installed)

    async def _getmappings(self, request: web.Request) -> web.Response:
        if "mode" not in request.query:
            return web.Response(status=500, text="500 Internal Server Error\n\nServer got itself in trouble")
        return web.json_response(self.mappings())

    async def _import_fail_info(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=500, text="Internal server error")
        if not isinstance(data, dict):
            return web.Response(status=400, text="Request body must be a JSON object")
        if "cnr_id" not in data and "url" not in data:
            return web.Response(status=400, text="Either 'cnr_id' or 'url' field is required")
        pack = self.resolve({"id": data.get("cnr_id") or data.get("url")})
        imported_broken = [p for p in self.broken_packs() if self._installed_key(p) in self.imported]
        if pack is None or pack not in imported_broken:
            return web.Response(status=400)
        module = pack["import_error"]
        path = f"/workspace/ComfyUI/custom_nodes/{pack['directory']}"
        return web.json_response({
            "name": pack["directory"], "path": path,
            "msg": f"Traceback (most recent call last):\nModuleNotFoundError: No module named '{module}'\n",
        })

    async def _snapshots(self, request: web.Request) -> web.Response:
        return web.json_response({"items": []})

    async def _queue_status(self, request: web.Request) -> web.Response:
        if self.legacy:
            finished = len(self.nodepack_result) + len(self.model_result)
            busy = 1 if self.running is not None else 0
            return web.json_response({
                "total_count": finished + busy + len(self.pending), "done_count": finished,
                "in_progress_count": busy,
                "is_processing": self._worker is not None and not self._worker.done()})
        client_id = request.query.get("client_id")
        running = [self.running] if self.running is not None else []
        pending = self.pending
        history = list(self.history.values())
        body: dict[str, Any] = {}
        if client_id:
            running = [t for t in running if t["client_id"] == client_id]
            pending = [t for t in pending if t["client_id"] == client_id]
            history = [t for t in history if t["client_id"] == client_id]
            body["client_id"] = client_id
        body.update({
            "total_count": len(pending) + len(running),
            "done_count": len(history),
            "in_progress_count": len(running),
            "pending_count": len(pending),
            "is_processing": self._worker is not None and not self._worker.done() if not client_id
            else bool(running),
        })
        return web.json_response(body)

    async def _queue_history(self, request: web.Request) -> web.Response:
        ui_id = request.query.get("ui_id")
        client_id = request.query.get("client_id")
        if ui_id:
            if ui_id in self.history and self.state_method == "GET":
                # 4.0.x hands aiohttp a pydantic record it cannot serialise, and answers 400.
                return web.Response(status=400)
            return web.json_response({"history": self.history.get(ui_id, {})})
        history = {k: v for k, v in self.history.items() if not client_id or v["client_id"] == client_id}
        return web.json_response({"history": history})

    async def _queue_task(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=500, text="Internal server error")
        problem = self._task_problem(data)
        if problem is not None:
            return web.Response(status=400, text=f"Invalid task data: {problem}")
        params = dict(data["params"])
        if data["kind"] == "install":
            params = {**_INSTALL_PARAM_DEFAULTS, **params}
        self.put({"ui_id": data["ui_id"], "client_id": data["client_id"], "kind": data["kind"], "params": params})
        return web.Response(status=200)

    @staticmethod
    def _task_problem(data: Any) -> str | None:
        if not isinstance(data, dict):
            return "task must be an object"
        for name in ("ui_id", "client_id"):
            if not isinstance(data.get(name), str):
                return f"{name}: Field required"
        if data.get("kind") not in _KINDS:
            return f"kind: Input should be one of {sorted(_KINDS)}"
        if not isinstance(data.get("params"), dict):
            return "params: Field required"
        return None

    async def _queue_legacy_install(self, request: web.Request) -> web.Response:
        """3.x ``queue/install``: pack fields in the body; an ``unknown`` version installs from ``files``."""
        if self.security_level == "strong":
            return web.Response(status=403, text=_SECURITY_ERROR)
        try:
            data = await request.json()
            version, channel, mode = data["version"], data["channel"], data["mode"]
        except (ValueError, KeyError, TypeError):
            return web.Response(status=500, text="500 Internal Server Error\n\nServer got itself in trouble")
        selected = data.get("selected_version") or "latest"
        if version == "unknown":
            files = data.get("files") or []
            params = {"id": str(files[0]).rstrip("/").rsplit("/", 1)[-1] if files else "",
                      "repository": files[0] if files else None, "selected_version": "unknown"}
        elif selected == "unknown":
            return web.Response(status=400, text="Invalid installation request")
        else:
            params = {"id": data.get("id"), "selected_version": selected, "repository": data.get("repository")}
        params.update({"channel": channel, "mode": mode})
        self.put({"ui_id": data.get("ui_id"), "client_id": "", "kind": "install", "params": params})
        return web.Response(status=200)

    async def _queue_install_model(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=500, text="Internal server error")
        if self.legacy:
            return self._legacy_install_model(data)
        if not isinstance(data, dict):
            return web.Response(status=400, text="Invalid model data: body must be an object")
        for name in ("client_id", "ui_id"):
            if name not in data:
                return web.Response(status=400, text=f"Missing required field: {name}")
        missing = [name for name in _REQUIRED_MODEL_FIELDS if not isinstance(data.get(name), str)]
        if missing:
            return web.Response(status=400, text=f"Invalid model data: {missing[0]}: Field required")
        params = {key: data.get(key, default) for key, default in _MODEL_PARAM_DEFAULTS.items()}
        self.put({"ui_id": data["ui_id"], "client_id": data["client_id"], "kind": "install-model", "params": params})
        return web.Response(status=200)

    def _legacy_install_model(self, data: Any) -> web.Response:
        if self.security_level == "strong":
            return web.Response(status=403, text=_SECURITY_ERROR)
        if not isinstance(data, dict) or data.get("filename") not in self.model_whitelist:
            return web.Response(status=400, text="Invalid model install request is detected")
        params = {key: data.get(key, default) for key, default in _MODEL_PARAM_DEFAULTS.items()}
        self.put({"ui_id": data.get("ui_id"), "client_id": "", "kind": "install-model", "params": params})
        return web.Response(status=200)

    async def _queue_start(self, request: web.Request) -> web.Response:
        if self.legacy and (self._worker is None or self._worker.done()):
            self.nodepack_result.clear()
            self.model_result.clear()
        return web.Response(status=200 if self.start_worker() else 201)

    async def _queue_reset(self, request: web.Request) -> web.Response:
        self.pending.clear()
        return web.Response(status=200)

    async def _reboot(self, request: web.Request) -> web.Response:
        if self.security_level == "strong":
            if self.legacy:
                return web.json_response({"error": "security_level"}, status=403)
            return web.Response(status=403)
        self.server.log.write("\nRestarting... [Legacy Mode]\n\n")
        self._reboot_task = asyncio.create_task(self._reboot_soon())
        return web.Response(status=200)

    async def _reboot_soon(self) -> None:
        # Let the reply reach the client before the "process" goes away.
        await asyncio.sleep(0.05)
        await self.server.restart(self.server.reboot_downtime)
