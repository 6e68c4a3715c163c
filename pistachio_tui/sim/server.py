"""SimServer: a simulated ComfyUI 0.8.0 on aiohttp, with switches that break it on purpose.

It answers the REST routes and the websocket the way the recorded real
server does (see ``tests/fixtures/comfyui-0.8.0``), runs prompts without a
GPU (see ``executor``), validates them with the real rules (see
``validate``) and, with ``manager=True`` (or a Manager version such as
``"V3.39"``), emulates ComfyUI-Manager's queue API (see ``manager``). Every
route is also served under ``/api``, as the real server does; ``/api/jobs``
only there (see ``jobs``). Its origin check, log subscription, ``/view?preview=``
and ``POST /interrupt`` (a ``prompt_id`` stops only that prompt, if it runs)
follow 0.8.0's ``server.py`` and ``api_server/routes/internal``.
``newer=True`` answers as servers after 0.8.0 do where they differ: the
``missing_node_type`` validation error and ``POST /api/jobs/{id}/cancel``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from pistachio_tui.sim import catalog
from pistachio_tui.sim.executor import Execution, Executor, now_ms
from pistachio_tui.sim.files import FileStore, content_type
from pistachio_tui.sim.hub import Client, Hub
from pistachio_tui.sim.jobs import BadJobsQuery, list_jobs, one_job
from pistachio_tui.sim.logs import ServerLog
from pistachio_tui.sim.png import reencode
from pistachio_tui.sim.prompt_queue import PromptQueue
from pistachio_tui.sim.validate import check_prompt

if TYPE_CHECKING:
    from pistachio_tui.sim.manager import ManagerEmulation

__all__ = ["SimServer"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_SERVER_TROUBLE = "500 Internal Server Error\n\nServer got itself in trouble"
_SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
# What ComfyUI lists as model files (folder_paths.supported_pt_extensions, plus configs' YAML).
_MODEL_EXTENSIONS = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft", ".yaml"}
_MAX_USERDATA_FILES = 1000
_FEATURES = {
    "supports_preview_metadata": True,
    "max_upload_size": 104857600,
    "extension": {"manager": {"supports_v4": True}},
}


def _json_copy(value: Any) -> Any:
    """A deep copy of JSON data (much faster than ``copy.deepcopy`` on 570 node definitions)."""
    return json.loads(json.dumps(value))


class SimServer:
    """A simulated ComfyUI 0.8.0 server for tests, benchmarks, the fix flow and the demo.

    ``object_info`` replaces the recorded node definitions; ``models`` maps a
    model folder to file names (defaults to a few plausible files);
    ``models_dir`` adds the files really present in ``models_dir/<folder>/``,
    read live; ``manager`` turns on the ComfyUI-Manager emulation (True: 4.0.4,
    or the version to emulate), whose reboot keeps the server down for
    ``reboot_downtime`` seconds.
    """

    def __init__(self, *, step_delay: float = 0.02, object_info: dict[str, Any] | None = None,
                 models: dict[str, list[str]] | None = None, manager: bool | str = False,
                 models_dir: Path | None = None, reboot_downtime: float = 0.2,
                 preview_every: int = 5, preview_method: str = "none", newer: bool = False,
                 node_delay: float = 0.0) -> None:
        self.knobs = Execution(step_delay=step_delay, preview_every=preview_every, preview_method=preview_method,
                               node_delay=node_delay)
        self.newer = newer
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.reboot_downtime = reboot_downtime
        self._recorded = _json_copy(object_info) if object_info is not None else catalog.recorded_object_info()
        self._models: dict[str, list[str]] = {
            folder: list(names) for folder, names in (models if models is not None else catalog.DEFAULT_MODELS).items()
        }
        self.hub = Hub()
        self.files = FileStore()
        self.log = ServerLog(self._send_logs)
        #: Client ids that asked for the console (``PATCH /internal/logs/subscribe``).
        self.log_subscribers: set[str] = set()
        self.queue = PromptQueue(self._queue_changed)
        self.node_defs: dict[str, Any] = _json_copy(self._recorded)
        self.executor = Executor(self.queue, self.hub, self.files, self.log, self.node_defs, self.knobs)
        self.userdata: dict[str, bytes] = {
            f"workflows/{name}": data for name, data in sorted(catalog.seed_workflows().items())
        }
        self._number = 0
        self._host = "127.0.0.1"
        self._port = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._fail_status = 500
        self._fail_times = 0
        self._garbage = False
        self._stall_until = 0.0
        self._stall_over = asyncio.Event()
        self._listing_cache: tuple[Any, str] | None = None
        self.manager: ManagerEmulation | None = None
        if manager:
            from pistachio_tui.sim.manager import ManagerEmulation

            self.manager = ManagerEmulation(self) if manager is True else ManagerEmulation(self, version=str(manager))

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        return f"http://{self._host}:{self._port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (port 0 picks a free one) and return the base URL."""
        self._host = host
        app = web.Application(middlewares=[self._faults], client_max_size=128 * 1024 * 1024)
        self._add_routes(app)
        if self.manager is not None:
            self.manager.add_routes(app, self._route)
        # Last: the real server's static files at "/" take GET and HEAD of any other path.
        app.router.add_route("*", "/{tail:.*}", self._static_fallback)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await self._site.start()
        addresses = self._runner.addresses
        self._port = addresses[0][1] if addresses else port
        self.hub.start()
        self.executor.start()
        self.log.start_up(self.url, self._loaded_pack_dirs(), self._failed_pack_imports())
        return self.url

    async def stop(self) -> None:
        """Stop everything: workers, sockets, listener."""
        self._stall_over.set()
        if self.manager is not None:
            await self.manager.stop()
        await self.executor.stop()
        self.hub.drop_all()
        await self.hub.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._site = None

    async def kill(self) -> None:
        """Vanish from the network: stop listening and cut every connection, but keep all state."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        self.hub.drop_all()
        if self._runner is not None and self._runner.server is not None:
            for connection in list(self._runner.server.connections):
                if connection.transport is not None:
                    connection.transport.abort()

    async def revive(self) -> None:
        """Listen again on the same port after :meth:`kill` or during :meth:`restart`."""
        if self._runner is None or self._site is not None:
            return
        self._site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await self._site.start()
        self.executor.start()

    async def restart(self, downtime: float = 0.0) -> None:
        """Restart like the real process: down for ``downtime`` s, then back with nothing in memory.

        Queue, history and the node cache are gone, clients get a new sid,
        node definitions are reloaded (packs installed meanwhile appear, or
        log their import failure). Saved output files survive, being on disk.
        """
        await self.kill()
        await self.executor.stop()
        self.queue.reset()
        self.executor.cache.clear()
        self.log_subscribers.clear()
        if self.manager is not None:
            self.manager.on_restart()
        self._reload_node_defs()
        self.log.start_up(self.url, self._loaded_pack_dirs(), self._failed_pack_imports())
        await asyncio.sleep(downtime)
        await self.revive()

    # ----------------------------------------------------------------- switches

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` HTTP requests with ``status`` (websocket handshakes excepted)."""
        self._fail_status = status
        self._fail_times = times

    def stall(self, seconds: float) -> None:
        """Hold every HTTP request that arrives in the next ``seconds`` until that time is over."""
        self._stall_over.set()
        self._stall_over = asyncio.Event()
        self._stall_until = time.monotonic() + seconds

    def garbage_next(self) -> None:
        """Answer the next HTTP request with a 200 whose JSON body is cut off."""
        self._garbage = True

    def drop_websockets(self) -> None:
        """Cut every open websocket abruptly (no close frame)."""
        self.hub.drop_all()

    def fail_class(self, class_type: str, message: str = "simulated failure") -> None:
        """Make every node of ``class_type`` raise ``RuntimeError(message)`` when it runs."""
        self.knobs.failing_classes[class_type] = message

    def clear_failures(self) -> None:
        """Undo :meth:`fail_class`."""
        self.knobs.failing_classes.clear()

    # ----------------------------------------------------------------- models

    def add_model(self, folder: str, name: str) -> None:
        """Make a model file appear in ``folder`` (as if downloaded)."""
        names = self._models.setdefault(folder, [])
        if name not in names:
            names.append(name)

    def models(self) -> dict[str, list[str]]:
        """Every folder's files: the in-memory ones plus those found under ``models_dir`` now."""
        listing = {folder: set(names) for folder, names in self._models.items()}
        if self.models_dir is not None and self.models_dir.is_dir():
            for folder in self.models_dir.iterdir():
                if not folder.is_dir():
                    continue
                found = listing.setdefault(folder.name, set())
                for path in folder.rglob("*"):
                    if path.is_file() and path.suffix.lower() in _MODEL_EXTENSIONS:
                        found.add(path.relative_to(folder).as_posix())
        return {folder: sorted(names) for folder, names in listing.items()}

    def object_info(self) -> dict[str, Any]:
        """Node definitions as served now: model pickers list the current files, file loaders the uploads."""
        models = self.models()
        served = dict(self.node_defs)
        for class_type, info in self.node_defs.items():
            patched = None
            for category in ("required", "optional"):
                for name, spec in (info.get("input", {}).get(category) or {}).items():
                    options = self._live_options(class_type, name, spec, models)
                    if options is None:
                        continue
                    if patched is None:
                        patched = copy.deepcopy(info)
                    patched["input"][category][name] = catalog.with_combo_options(spec, options)
            if patched is not None:
                served[class_type] = patched
        return served

    def _live_options(self, class_type: str, name: str, spec: list[Any],
                      models: dict[str, list[str]]) -> list[str] | None:
        if catalog.combo_options(spec) is None:
            return None
        if (class_type, name) in catalog.INPUT_FILE_PICKERS:
            return sorted(set(catalog.combo_options(spec) or []) | set(self.files.names("input")))
        folder = catalog.model_folder_for(class_type, name)
        return None if folder is None else models.get(folder, [])

    def _object_info_text(self) -> str:
        key = (json.dumps(self.models(), sort_keys=True), tuple(self.files.names("input")))
        if self._listing_cache is None or self._listing_cache[0] != key:
            self._listing_cache = (key, json.dumps(self.object_info()))
        return self._listing_cache[1]

    # ----------------------------------------------------------------- packs

    def _reload_node_defs(self) -> None:
        fresh = _json_copy(self._recorded)
        if self.manager is not None:
            for pack in self.manager.loadable_packs():
                fresh.update(_json_copy(pack["nodes"]))
        self.node_defs.clear()
        self.node_defs.update(fresh)
        self._listing_cache = None

    def _loaded_pack_dirs(self) -> list[str]:
        dirs = ["probe_nodes"]
        if self.manager is not None:
            dirs += [pack["directory"] for pack in self.manager.loadable_packs()]
        return dirs

    def _failed_pack_imports(self) -> dict[str, str]:
        if self.manager is None:
            return {}
        return {pack["directory"]: pack["import_error"] for pack in self.manager.broken_packs()}

    # ----------------------------------------------------------------- plumbing

    def _queue_changed(self) -> None:
        self.hub.emit("status", {"status": {"exec_info": {"queue_remaining": self.queue.remaining()}}})

    @web.middleware
    async def _faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.endswith("/ws"):
            return await handler(request)
        wait = self._stall_until - time.monotonic()
        if wait > 0:
            # Released early by stop() or a new stall(), so shutting down never waits out a stall.
            try:
                await asyncio.wait_for(self._stall_over.wait(), wait)
            except asyncio.TimeoutError:
                pass
        if self._refused_origin(request):
            return web.Response(status=403)
        if self._fail_times > 0:
            self._fail_times -= 1
            if self._fail_status in (401, 403):
                # What an auth proxy in front of ComfyUI answers: its own page, its own name.
                return web.Response(status=self._fail_status, content_type="text/html",
                                    text=f"<html><body><h1>{self._fail_status} Authorization Required</h1>"
                                         "</body></html>", headers={"Server": "nginx"})
            return web.Response(status=self._fail_status, text=f"{self._fail_status}: simulated failure")
        if self._garbage:
            self._garbage = False
            return web.Response(status=200, body=b'{"queue_running": [[1, "', content_type="application/json")
        return await handler(request)

    @staticmethod
    def _refused_origin(request: web.Request) -> bool:
        """ComfyUI's origin check on a loopback host: an ``Origin`` naming another host is refused."""
        origin = request.headers.get("Origin")
        host = request.host
        if not origin or not host:
            return False
        host_name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if host_name not in ("127.0.0.1", "localhost", "::1", "[::1]"):
            return False
        parsed = urlsplit(origin)
        origin_domain = parsed.netloc.lower() if parsed.port is not None else (parsed.hostname or "")
        host_domain = host.lower() if parsed.port is not None else host_name.lower()
        return bool(origin_domain) and origin_domain != host_domain

    def _send_logs(self, entries: list[dict[str, str]]) -> None:
        for client_id in list(self.log_subscribers):
            if client_id not in self.hub.clients:
                # As the real terminal service does: a closed socket ends the subscription.
                self.log_subscribers.discard(client_id)
                continue
            self.hub.emit("logs", {"entries": entries, "size": None}, client_id)

    @staticmethod
    def _route(app: web.Application, method: str, path: str, handler: Handler) -> None:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, "/api" + path, handler)

    def _add_routes(self, app: web.Application) -> None:
        get, post = "GET", "POST"
        for method, path, handler in (
            (get, "/ws", self._ws),
            (get, "/system_stats", self._system_stats),
            (get, "/object_info", self._object_info),
            (get, "/object_info/{node_class}", self._object_info_one),
            (get, "/models", self._model_folders),
            (get, "/models/{folder}", self._model_files),
            (get, "/embeddings", self._embeddings),
            (get, "/extensions", self._extensions),
            (get, "/features", self._features),
            (get, "/queue", self._get_queue),
            (post, "/queue", self._post_queue),
            (get, "/prompt", self._get_prompt),
            (post, "/prompt", self._post_prompt),
            (get, "/history", self._get_history),
            (get, "/history/{prompt_id}", self._get_history_one),
            (post, "/history", self._post_history),
            (post, "/interrupt", self._interrupt),
            (post, "/free", self._free),
            (get, "/view", self._view),
            (post, "/upload/image", self._upload_image),
            (get, "/internal/logs/raw", self._logs_raw),
            (get, "/internal/logs", self._logs),
            ("PATCH", "/internal/logs/subscribe", self._logs_subscribe),
            (get, "/internal/folder_paths", self._folder_paths),
            (get, "/userdata", self._list_userdata),
            (get, "/userdata/{file}", self._get_userdata),
            (post, "/userdata/{file}", self._post_userdata),
        ):
            self._route(app, method, path, handler)
        app.router.add_route(get, "/api/jobs", self._jobs)
        app.router.add_route(get, "/api/jobs/{prompt_id}", self._job)
        if self.newer:
            app.router.add_route(post, "/api/jobs/{prompt_id}/cancel", self._cancel_job)

    # ----------------------------------------------------------------- websocket

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        client = Client(sid, ws, request.transport)
        await ws.send_json({"type": "status", "data": {**self.executor.status_data(), "sid": sid}})
        if self.executor.running_client == sid and self.executor.last_node_id is not None:
            await ws.send_json({"type": "executing", "data": {"node": self.executor.last_node_id}})
        self.hub.add(client)
        first = True
        try:
            async for message in ws:
                if message.type != web.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(message.data)
                except ValueError:
                    continue
                if first and isinstance(data, dict) and data.get("type") == "feature_flags":
                    client.feature_flags = data.get("data") or {}
                    await ws.send_json({"type": "feature_flags", "data": _FEATURES})
                first = False
        finally:
            self.hub.remove(client)
        return ws

    # ----------------------------------------------------------------- GET routes

    async def _system_stats(self, request: web.Request) -> web.Response:
        stats = catalog.recorded_system_stats()
        argv = stats["system"]["argv"]
        if "--port" in argv:
            argv[argv.index("--port") + 1] = str(self._port)
        return web.json_response(stats)

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.Response(text=self._object_info_text(), content_type="application/json")

    async def _object_info_one(self, request: web.Request) -> web.Response:
        name = request.match_info["node_class"]
        served = self.object_info()
        return web.json_response({name: served[name]} if name in served else {})

    async def _model_folders(self, request: web.Request) -> web.Response:
        folders = list(catalog.MODEL_FOLDERS)
        folders += [f for f in self.models() if f not in folders]
        return web.json_response(folders)

    async def _model_files(self, request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        models = self.models()
        if folder not in catalog.MODEL_FOLDERS and folder not in models:
            return web.Response(status=404)
        return web.json_response(models.get(folder, []))

    async def _embeddings(self, request: web.Request) -> web.Response:
        names = self.models().get("embeddings", [])
        return web.json_response([name.rsplit(".", 1)[0] for name in names])

    async def _extensions(self, request: web.Request) -> web.Response:
        return web.json_response(catalog.frontend_extensions())

    async def _features(self, request: web.Request) -> web.Response:
        return web.json_response(self.manager.features(_FEATURES) if self.manager is not None else _FEATURES)

    async def _folder_paths(self, request: web.Request) -> web.Response:
        # internal_routes.get_folder_paths: each folder's paths (models/<name>, as on a default install).
        root = str(self.models_dir) if self.models_dir is not None else "/workspace/ComfyUI/models"
        folders = list(catalog.MODEL_FOLDERS) + [f for f in self.models() if f not in catalog.MODEL_FOLDERS]
        return web.json_response({folder: [f"{root}/{folder}"] for folder in folders})

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [self.queue.running.as_list()] if self.queue.running is not None else []
        return web.json_response({
            "queue_running": running,
            "queue_pending": [item.as_list() for item in self.queue.pending],
        })

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self.executor.status_data()["status"])

    async def _get_history(self, request: web.Request) -> web.Response:
        try:
            max_items = int(request.query["max_items"]) if "max_items" in request.query else None
            offset = int(request.query.get("offset", -1))
        except ValueError:
            return web.Response(status=400)
        return web.json_response(self.queue.history_slice(max_items, offset))

    async def _get_history_one(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.queue.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry is not None else {})

    async def _view(self, request: web.Request) -> web.Response:
        filename = request.query.get("filename")
        if filename is None:
            return web.Response(status=404)
        if not filename or filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        subfolder = request.query.get("subfolder", "")
        if ".." in subfolder or subfolder.startswith("/"):
            return web.Response(status=403)
        data = self.files.get(request.query.get("type", "output"), subfolder, filename)
        if data is None:
            return web.Response(status=404)
        if "preview" in request.query:
            return self._preview_of(data, filename, request)
        return web.Response(body=data, content_type=content_type(filename),
                            headers={"Content-Disposition": f'filename="{filename}"'})

    @staticmethod
    def _preview_of(data: bytes, filename: str, request: web.Request) -> web.Response:
        info = request.query["preview"].split(";")
        channel = request.query.get("channel", "")
        image_format = info[0] if info[0] in ("webp", "jpeg") and "a" not in channel else "webp"
        quality = int(info[-1]) if info[-1].isdigit() else 90
        body = reencode(data, image_format, quality, rgb_only=channel == "rgb")
        return web.Response(body=body, content_type=f"image/{image_format}",
                            headers={"Content-Disposition": f'filename="{filename}"'})

    @staticmethod
    async def _static_fallback(request: web.Request) -> web.Response:
        if request.method in ("GET", "HEAD"):
            return web.Response(status=404, text="404: Not Found")
        return web.Response(status=405, text="405: Method Not Allowed", headers={"Allow": "GET,HEAD"})

    async def _jobs(self, request: web.Request) -> web.Response:
        running = [self.queue.running] if self.queue.running is not None else []
        try:
            body = list_jobs(dict(request.query), running, self.queue.pending, dict(self.queue.history))
        except BadJobsQuery as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(body)

    async def _job(self, request: web.Request) -> web.Response:
        running = [self.queue.running] if self.queue.running is not None else []
        job = one_job(request.match_info["prompt_id"], running, self.queue.pending, dict(self.queue.history))
        if job is None:
            return web.json_response({"error": "Job not found"}, status=404)
        return web.json_response(job)

    async def _cancel_job(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        running = self.queue.running
        if running is not None and running.prompt_id == prompt_id:
            self.executor.interrupt()
        elif not self.queue.delete(prompt_id):
            return web.json_response({"error": "Job not found"}, status=404)
        return web.json_response({"id": prompt_id, "cancelled": True})

    async def _logs_subscribe(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            client_id, enabled = data["clientId"], data["enabled"]
        except (ValueError, KeyError, TypeError):
            return web.Response(status=500, text=_SERVER_TROUBLE)
        if enabled:
            self.log_subscribers.add(str(client_id))
        else:
            self.log_subscribers.discard(str(client_id))
        return web.Response(status=200)

    async def _logs_raw(self, request: web.Request) -> web.Response:
        return web.json_response(self.log.body())

    async def _logs(self, request: web.Request) -> web.Response:
        return web.json_response("".join(entry["m"] for entry in self.log.entries))

    async def _list_userdata(self, request: web.Request) -> web.Response:
        directory = request.query.get("dir", "").strip("/")
        if not directory:
            return web.Response(status=400, text="Directory not provided")
        prefix = directory + "/"
        recurse = request.query.get("recurse", "").lower() == "true"
        names = []
        for path, data in self.userdata.items():
            if not path.startswith(prefix):
                continue
            rel = path[len(prefix):]
            if "/" in rel and not recurse:
                continue
            names.append((rel, len(data)))
        if not names:
            return web.Response(status=404)
        if request.query.get("full_info", "").lower() == "true":
            return web.json_response([{"path": rel, "size": size, "modified": time.time()} for rel, size in names])
        return web.json_response([rel for rel, _ in names])

    async def _get_userdata(self, request: web.Request) -> web.Response:
        path = request.match_info["file"]
        if ".." in path or path.startswith("/"):
            return web.Response(status=403)
        data = self.userdata.get(path)
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type=content_type(path))

    # ----------------------------------------------------------------- POST routes

    async def _post_prompt(self, request: web.Request) -> web.Response:
        self.log.write("got prompt\n")
        try:
            json_data = await request.json()
        except ValueError:
            return web.Response(status=500, text=_SERVER_TROUBLE)
        if not isinstance(json_data, dict):
            return web.Response(status=500, text=_SERVER_TROUBLE)
        if "number" in json_data:
            number: float = float(json_data["number"])
        else:
            number = self._number
            if json_data.get("front"):
                number = -number
            self._number += 1
        if "prompt" not in json_data:
            error = {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided",
                     "extra_info": {}}
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        prompt_id = str(json_data.get("prompt_id") or uuid.uuid4())
        try:
            outcome = check_prompt(json_data["prompt"], self.object_info(), self.models(),
                                   json_data.get("partial_execution_targets"), newer=self.newer)
        except (ValueError, TypeError):
            return web.Response(status=500, text=_SERVER_TROUBLE)
        if outcome.status != 200:
            self.log.write(f"invalid prompt: {outcome.body['error']}\n")
            return web.json_response(outcome.body, status=outcome.status)
        extra_data = dict(json_data.get("extra_data") or {})
        if "client_id" in json_data:
            extra_data["client_id"] = json_data["client_id"]
        for key in _SENSITIVE_EXTRA_DATA_KEYS:
            extra_data.pop(key, None)
        extra_data["create_time"] = now_ms()
        self.queue.put(number, prompt_id, outcome.prompt, extra_data, outcome.outputs)
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": outcome.body["node_errors"]})

    async def _json_or_empty(self, request: web.Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    async def _post_queue(self, request: web.Request) -> web.Response:
        data = await self._json_or_empty(request)
        if data.get("clear"):
            self.queue.wipe()
        for prompt_id in data.get("delete") or []:
            self.queue.delete(prompt_id)
        return web.Response(status=200)

    async def _post_history(self, request: web.Request) -> web.Response:
        data = await self._json_or_empty(request)
        if data.get("clear"):
            self.queue.history.clear()
        for prompt_id in data.get("delete") or []:
            self.queue.history.pop(prompt_id, None)
        return web.Response(status=200)

    async def _interrupt(self, request: web.Request) -> web.Response:
        # server.py's post_interrupt: a body that is not JSON is a global interrupt; JSON that
        # is not an object fails on .get() (500); a prompt_id stops that prompt only if it runs.
        try:
            data = await request.json()
        except json.JSONDecodeError:
            data = {}
        except UnicodeDecodeError:
            return web.Response(status=500, text=_SERVER_TROUBLE)
        if not isinstance(data, dict):
            return web.Response(status=500, text=_SERVER_TROUBLE)
        prompt_id = data.get("prompt_id")
        if not prompt_id:
            self.log.write("Global interrupt (no prompt_id specified)\n")
            self.executor.interrupt()
        elif self.queue.running is not None and self.queue.running.prompt_id == prompt_id:
            self.log.write(f"Interrupting prompt {prompt_id}\n")
            self.executor.interrupt()
        else:
            self.log.write(f"Prompt {prompt_id} is not currently running, skipping interrupt\n")
        return web.Response(status=200)

    async def _free(self, request: web.Request) -> web.Response:
        data = await self._json_or_empty(request)
        if data.get("free_memory") or data.get("unload_models"):
            self.executor.cache.clear()
        return web.Response(status=200)

    async def _upload_image(self, request: web.Request) -> web.Response:
        form = await request.post()
        image = form.get("image")
        if not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        kind = str(form.get("type") or "input")
        subfolder = str(form.get("subfolder") or "")
        filename = Path(image.filename).name
        if ".." in subfolder or subfolder.startswith("/") or kind not in ("input", "temp", "output"):
            return web.Response(status=400)
        if str(form.get("overwrite", "")).lower() not in ("true", "1"):
            filename = self.files.free_name(kind, subfolder, filename)
        self.files.put(kind, subfolder, filename, image.file.read())
        return web.json_response({"name": filename, "subfolder": subfolder, "type": kind})

    async def _post_userdata(self, request: web.Request) -> web.Response:
        path = request.match_info["file"]
        if ".." in path or path.startswith("/"):
            return web.Response(status=403)
        if path in self.userdata and request.query.get("overwrite", "true").lower() == "false":
            return web.Response(status=409, text="File already exists")
        if path not in self.userdata and len(self.userdata) >= _MAX_USERDATA_FILES:
            return web.Response(status=507, text="Too many saved files")
        self.userdata[path] = await request.read()
        return web.json_response(path)
