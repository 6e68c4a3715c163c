"""A simulated RunPod API on a loopback port: the demo's Pods screen and the RunPod tests.

It answers the operations in ``pistachio_tui.runpod.queries`` (it looks at which
root fields and mutations the text asks for) from a mutable, wire-shaped pod
list, so a test can change the world between polls. With ``validate_schema``
(the default; needs ``graphql-core``, a test dependency) every operation is first
validated, with its variables, against ``data/runpod_schema.graphql`` (the part of
RunPod's public schema we may use): an unknown field, argument, input field or a
wrongly typed variable is refused with HTTP 400 and ``errors[]``, as RunPod's
API does, so a typo in a query fails the tests instead of production. Shapes follow
RunPod's public GraphQL schema and the runpod-python SDK's queries and mutations.

::

    async with FakeRunPod() as fake:            # or: url = await fake.start(); ...; await fake.stop()
        monkeypatch.setenv("RUNPOD_API_URL", fake.url)
        monkeypatch.setenv("RUNPOD_API_KEY", fake.api_key)
        fake.pods.append(make_pod("p3", "extra", gpu_util=0))
        fake.rate_limited = 30                   # next requests answer 429, Retry-After: 30

The same pods are served by the REST v2 half (``runpod_rest``) under ``/v2``;
``rest_available = False`` makes the host answer as one without v2 (plain 404),
``graphql_available = False`` as one whose GraphQL was switched off. Under
``/proxy/{podId}-{port}/`` it stands in for RunPod's HTTP proxy
(``https://{podId}-{port}.proxy.runpod.net``): requests go to the URL in
``proxied[pod_id]`` when the pod runs, else answer 502 as the real proxy does for
a pod or port with nothing behind it.

Switches (all off by default, settable at any time):
``reject_key`` (401), ``graphql_errors`` (list of messages → 200 with ``errors[]``),
``mutation_errors`` (the same, for start/stop/terminate only),
``rate_limited`` (Retry-After seconds, or True for none → 429), ``server_error``
(an HTTP status), ``delay`` (seconds before every answer).
``requests`` records every call as ``{"api", "operation", "root", "variables"}``; for a
REST call ``root`` is the GraphQL field it stands for (``myself``, ``podStop``...).
"""

from __future__ import annotations

import asyncio
import json
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import graphql

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from pistachio_tui.sim.runpod_rest import (
    ACTIONS_BY_STATUS,
    action_body_errors,
    comfy_template,
    create_pod_errors,
    problem,
    rest_gpu,
    rest_pod,
    v2_status,
)

DEFAULT_KEY = "rpa_FAKEKEY0123456789"

_MUTATION = re.compile(r"\b(podResume|podBidResume|podStop|podTerminate)\s*\(")
#: The GraphQL mutation each REST v2 action stands for, so ``operations()`` reads the same either way.
_ACTION_ROOT = {"start": "podResume", "stop": "podStop", "terminate": "podTerminate", "restart": "podRestart"}
_INLINE_POD_ID = re.compile(r'podId:\s*"([^"]+)"')
_INLINE_GPU_COUNT = re.compile(r"gpuCount:\s*(\d+)")
_ACCOUNT_FIELDS = ("id", "clientBalance", "currentSpendPerHr", "spendLimit")


@cache
def runpod_schema() -> graphql.GraphQLSchema:
    import graphql

    return graphql.build_schema((Path(__file__).parent / "data" / "runpod_schema.graphql").read_text(encoding="utf-8"))


def schema_errors(query: str, variables: dict[str, Any]) -> list[str]:
    """Why RunPod would refuse this operation, or nothing when the schema accepts it."""
    import graphql
    from graphql.execution.values import get_variable_values

    try:
        document = graphql.parse(query)
    except graphql.GraphQLError as exc:
        return [exc.message]
    errors = [e.message for e in graphql.validate(runpod_schema(), document)]
    if errors:
        return errors
    for definition in document.definitions:
        if isinstance(definition, graphql.OperationDefinitionNode):
            coerced = get_variable_values(runpod_schema(), definition.variable_definitions or [], variables)
            if isinstance(coerced, list):
                errors += [e.message for e in coerced]
    return errors


def make_runtime(*, uptime: int = 3600, gpu_util: float | None = 0.0, memory_util: float | None = 0.0,
                 gpu_count: int = 1, public_ip: str | None = "203.0.113.7", ssh_port: int = 40022) -> dict[str, Any]:
    """A wire-shaped pod ``runtime`` with HTTP 8188 via the proxy and, if ``public_ip``, public SSH."""
    ports = [{"ip": "100.65.0.2", "isIpPublic": False, "privatePort": 8188, "publicPort": 60188, "type": "http"}]
    if public_ip:
        ports.append({"ip": public_ip, "isIpPublic": True, "privatePort": 22, "publicPort": ssh_port, "type": "tcp"})
    return {
        "uptimeInSeconds": uptime,
        "ports": ports,
        "gpus": [{"id": f"GPU-{i}", "gpuUtilPercent": gpu_util, "memoryUtilPercent": memory_util}
                 for i in range(gpu_count)],
        "container": {"cpuPercent": 3, "memoryPercent": 12},
    }


def make_pod(pod_id: str, name: str, *, gpu: str = "NVIDIA GeForce RTX 4090", gpu_count: int = 1,
             cost_per_hr: float = 0.69, running: bool = True, image: str = "runpod/comfyui:latest",
             pod_type: str = "RESERVED", bid: float | None = None, volume_gb: float = 0,
             **runtime: Any) -> dict[str, Any]:
    """A wire-shaped pod as ``myself { pods { … } }`` returns it; ``runtime`` → ``make_runtime``.
    ``pod_type="INTERRUPTABLE"`` with a ``bid`` makes a spot pod."""
    return {
        "ports": "8188/http,22/tcp",
        "volumeInGb": volume_gb,
        "lowestBidPriceToResume": bid,
        "id": pod_id,
        "name": name,
        "desiredStatus": "RUNNING" if running else "EXITED",
        "imageName": image,
        "costPerHr": cost_per_hr,
        "gpuCount": gpu_count,
        "podType": pod_type,
        "machine": {"gpuDisplayName": gpu, "podHostId": f"{pod_id}-64410b1f"},
        "runtime": make_runtime(gpu_count=gpu_count, **runtime) if running else None,
    }


def default_pods() -> list[dict[str, Any]]:
    """Two running pods (one busy, one idle) and a stopped one."""
    return [
        make_pod("abc123xyz", "comfy-4090", gpu_util=87.0, memory_util=61.0, uptime=7380),
        make_pod("def456uvw", "trainer-h100", gpu="NVIDIA H100 80GB HBM3", cost_per_hr=2.99,
                 gpu_util=0.0, uptime=1800, public_ip=None),
        make_pod("ghi789rst", "old-a40", gpu="NVIDIA A40", cost_per_hr=0.39, running=False),
    ]


def default_gpu_types() -> list[dict[str, Any]]:
    """A few GPU types with prices shaped like RunPod's."""
    def gpu(gpu_id: str, memory: int, on_demand: float | None, spot: float | None,
            secure: bool = True, community: bool = True) -> dict[str, Any]:
        return {
            "id": gpu_id, "displayName": gpu_id.replace("NVIDIA ", "").replace("GeForce ", ""),
            "memoryInGb": memory, "secureCloud": secure, "communityCloud": community,
            "securePrice": on_demand, "communityPrice": on_demand, "secureSpotPrice": spot,
            "communitySpotPrice": spot,
            "lowestPrice": {"minimumBidPrice": spot, "uninterruptablePrice": on_demand},
        }
    return [
        gpu("NVIDIA H100 80GB HBM3", 80, 2.99, 1.75),
        gpu("NVIDIA GeForce RTX 4090", 24, 0.69, 0.35),
        gpu("NVIDIA A40", 48, 0.39, None, community=False),
        gpu("NVIDIA B200", 180, None, None, secure=False, community=False),
    ]


class FakeRunPod:
    """The fake API. ``pods``/``gpu_types`` are wire dicts the test may edit freely."""

    def __init__(self, *, api_key: str = DEFAULT_KEY, pods: list[dict[str, Any]] | None = None,
                 gpu_types: list[dict[str, Any]] | None = None, balance: float = 25.0,
                 spend_limit: float = 80.0, validate_schema: bool = True) -> None:
        self.api_key = api_key
        self.validate_schema = validate_schema
        #: Pod id → the URL its HTTP services are really at, for the ``/proxy/`` stand-in.
        self.proxied: dict[str, str] = {}
        self.pods = default_pods() if pods is None else pods
        self.gpu_types = default_gpu_types() if gpu_types is None else gpu_types
        self.balance = balance
        self.spend_limit = spend_limit
        #: None: the sum of the running pods' $/h, as RunPod computes it.
        self.current_spend_per_hr: float | None = None
        self.reject_key = False
        self.graphql_errors: list[str] | None = None
        self.mutation_errors: list[str] | None = None
        self.rate_limited: float | bool = False
        self.server_error: int | None = None
        self.delay = 0.0
        self.rest_available = True
        self.templates = {"tpl_comfy": comfy_template()}
        #: Pod id → its log lines ("source", "line"), served as the SSE backfill.
        self.logs: dict[str, list[tuple[str, str]]] = {}
        #: GPU id → stock level the catalog reports when asked (default HIGH).
        self.stock: dict[str, str] = {}
        self.graphql_available = True
        self.requests: list[dict[str, Any]] = []
        #: The schema errors of every operation refused so far.
        self.refused: list[list[str]] = []
        self.url = ""
        #: ``RUNPOD_PROXY_URL`` for this simulator: a template with ``{pod_id}`` and ``{port}``.
        self.proxy_url = ""
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = a free port); returns the GraphQL endpoint URL."""
        self._stopping.clear()
        app = web.Application()
        app.router.add_post("/graphql", self._handle)
        app.router.add_get("/v2/pods", self._rest_pods)
        app.router.add_get("/v2/pods/{id}", self._rest_pod)
        app.router.add_post("/v2/pods/{id}/action", self._rest_action)
        app.router.add_get("/v2/catalog/gpus", self._rest_gpus)
        app.router.add_get("/v2/templates/{id}", self._rest_template)
        app.router.add_get("/v2/pods/{id}/logs", self._rest_logs)
        app.router.add_post("/v2/pods", self._rest_create)
        app.router.add_route("*", "/proxy/{target}/{tail:.*}", self._proxy)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{bound[0]}:{bound[1]}/graphql"
        self.proxy_url = f"http://{bound[0]}:{bound[1]}/proxy/{{pod_id}}-{{port}}"
        return self.url

    async def stop(self) -> None:
        """Stop serving; slow answers still pending are cut short."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeRunPod:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def pod(self, pod_id: str) -> dict[str, Any] | None:
        """The wire dict of a pod, None if there is none with that id."""
        return next((p for p in self.pods if p["id"] == pod_id), None)

    def operations(self) -> list[str]:
        """The root field or mutation of every request so far, in order."""
        return [r["root"] for r in self.requests]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        query = body.get("query", "")
        variables = body.get("variables") or {}
        mutation = _MUTATION.search(query)
        root = mutation.group(1) if mutation else ("gpuTypes" if "gpuTypes" in query else "myself")
        if "pod(" in query and not mutation:
            root = "pod"
        self.requests.append({"api": "graphql", "operation": query, "root": root, "variables": variables,
                              "user_agent": request.headers.get("User-Agent", "")})
        await self._wait()
        if not self.graphql_available:
            return web.Response(status=404, text="404 page not found")
        if self.reject_key or request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.Response(status=401, text="Unauthorized")
        if self.validate_schema and (invalid := schema_errors(query, variables)):
            self.refused.append(invalid)
            return web.json_response({"errors": [{"message": m, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}
                                                 for m in invalid]}, status=400)
        if self.rate_limited is not False:
            headers = {} if self.rate_limited is True else {"Retry-After": f"{self.rate_limited:g}"}
            return web.json_response({"errors": [{"message": "Too many requests"}]}, status=429, headers=headers)
        if self.server_error:
            return web.Response(status=self.server_error, text="<html>upstream error</html>")
        errors = self.graphql_errors or (self.mutation_errors if mutation else None)
        if errors:
            return web.json_response({"data": None, "errors": [{"message": m} for m in errors]})
        if mutation:
            return self._mutate(root, query, variables)
        if root == "gpuTypes":
            return web.json_response({"data": {"gpuTypes": self.gpu_types}})
        if root == "pod":
            pod = self.pod(variables.get("input", {}).get("podId"))
            fields = ("id", "podType", "lowestBidPriceToResume")
            return web.json_response({"data": {"pod": {k: pod.get(k) for k in fields} if pod else None}})
        return web.json_response({"data": {"myself": self._myself(query)}})

    def _myself(self, query: str) -> dict[str, Any]:
        myself: dict[str, Any] = {}
        if "clientBalance" in query:
            spend = self.current_spend_per_hr
            if spend is None:
                spend = round(sum(p["costPerHr"] for p in self.pods if p["desiredStatus"] == "RUNNING"), 4)
            account = {"id": "user_fake", "clientBalance": self.balance, "currentSpendPerHr": spend,
                       "spendLimit": self.spend_limit}
            myself.update({k: account[k] for k in _ACCOUNT_FIELDS})
        if re.search(r"\bpods\b", query):
            myself["pods"] = self.pods
        return myself

    def _mutate(self, root: str, query: str, variables: dict[str, Any]) -> web.Response:
        args = variables.get("input") or {}
        pod_id = args.get("podId")
        if pod_id is None:
            inline = _INLINE_POD_ID.search(query)
            pod_id = inline.group(1) if inline else None
        pod = self.pod(pod_id) if pod_id else None
        if pod is None:
            return web.json_response({"data": {root: None},
                                      "errors": [{"message": f"Pod {pod_id} not found", "path": [root]}]})
        if root == "podTerminate":
            self.pods.remove(pod)
            return web.json_response({"data": {"podTerminate": None}})
        if root == "podStop":
            pod.update(desiredStatus="EXITED", runtime=None)
        elif (root == "podResume") != (pod["podType"] == "RESERVED"):
            return web.json_response({"data": {root: None}, "errors": [{"message": (
                "This is a spot pod: resume it with a bid" if root == "podResume"
                else "This is an on-demand pod: it takes no bid"), "path": [root]}]})
        else:
            count = args.get("gpuCount")
            if count is None:
                inline = _INLINE_GPU_COUNT.search(query)
                count = int(inline.group(1)) if inline else 1
            pod.update(desiredStatus="RUNNING", gpuCount=count, runtime=make_runtime(uptime=0, gpu_count=count),
                       **({"costPerHr": round(args["bidPerGpu"] * count, 4)} if root == "podBidResume" else {}))
        return web.json_response({"data": {root: {"id": pod["id"], "desiredStatus": pod["desiredStatus"]}}})

    async def _proxy(self, request: web.Request) -> web.Response:
        pod_id, _, port = request.match_info["target"].rpartition("-")
        pod = self.pod(pod_id)
        upstream = self.proxied.get(pod_id)
        if pod is None or pod["desiredStatus"] != "RUNNING" or upstream is None or not port.isdigit():
            return web.Response(status=502, text="502 Bad Gateway")
        url = f"{upstream.rstrip('/')}/{request.match_info['tail']}"
        try:
            async with ClientSession(timeout=ClientTimeout(total=10)) as session, session.request(
                    request.method, url, params=request.query, data=await request.read(),
                    headers={k: v for k, v in request.headers.items() if k.lower() == "content-type"}) as answer:
                return web.Response(status=answer.status, body=await answer.read(),
                                    content_type=answer.content_type)
        except ClientError:
            return web.Response(status=502, text="502 Bad Gateway")

    # -- REST v2 ---------------------------------------------------------------------------------

    async def _wait(self) -> None:
        if self.delay:
            try:
                await asyncio.wait_for(self._stopping.wait(), self.delay)
            except asyncio.TimeoutError:
                pass

    async def _rest_gate(self, request: web.Request, root: str, body: Any = None) -> web.Response | None:
        """What every REST call meets before its own answer: delay, v2 present, key, limits."""
        self.requests.append({"api": "rest", "operation": f"{request.method} {request.path}", "root": root,
                              "variables": body, "user_agent": request.headers.get("User-Agent", "")})
        await self._wait()
        if not self.rest_available:
            return web.Response(status=404, text="404 page not found")
        if self.reject_key or request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return problem(401, "missing or invalid API key")
        if self.rate_limited is not False:
            headers = {} if self.rate_limited is True else {"Retry-After": f"{self.rate_limited:g}"}
            return problem(429, "rate limit exceeded for the minute window", headers=headers)
        if self.server_error:
            return web.Response(status=self.server_error, text="<html>upstream error</html>")
        return None

    async def _rest_pods(self, request: web.Request) -> web.Response:
        if refused := await self._rest_gate(request, "myself"):
            return refused
        return web.json_response({"pods": [rest_pod(p) for p in self.pods]})

    async def _rest_pod(self, request: web.Request) -> web.Response:
        if refused := await self._rest_gate(request, "pod"):
            return refused
        pod = self.pod(request.match_info["id"])
        if pod is None:
            return problem(404, "pod not found")
        return web.json_response(rest_pod(pod))

    async def _rest_gpus(self, request: web.Request) -> web.Response:
        if refused := await self._rest_gate(request, "gpuTypes"):
            return refused
        gpus = [rest_gpu(g) for g in self.gpu_types]
        if request.query.get("include") == "AVAILABILITY":
            for gpu in gpus:
                gpu["availability"] = self.stock.get(gpu["id"], "HIGH")
        return web.json_response({"gpus": gpus})

    async def _rest_logs(self, request: web.Request) -> web.StreamResponse:
        if refused := await self._rest_gate(request, "podLogs"):
            return refused
        pod_id = request.match_info["id"]
        if self.pod(pod_id) is None:
            return problem(404, "pod not found")
        tail = int(request.query.get("tail", "100"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        lines = self.logs.get(pod_id, [])
        for n, (source, line) in enumerate(lines[max(len(lines) - tail, 0):]):
            ts = f"2026-06-01T12:02:{n:02d}Z"
            event = json.dumps({"ts": ts, "source": source, "line": line})
            await response.write(f"id: {ts}/{n:012d}\ndata: {event}\n\n".encode())
        # A live stream stays open for new lines until the client leaves.
        await self._stopping.wait()
        return response

    async def _rest_template(self, request: web.Request) -> web.Response:
        if refused := await self._rest_gate(request, "template"):
            return refused
        template = self.templates.get(request.match_info["id"])
        return web.json_response(template) if template else problem(404, "template not found")

    async def _rest_create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if refused := await self._rest_gate(request, "podCreate", body):
            return refused
        if errors := create_pod_errors(body):
            return problem(400, "request body failed validation", errors=errors)
        gpu_type = next((g for g in self.gpu_types if g["id"] == body["gpu"]["id"]), None)
        if gpu_type is None or self.stock.get(gpu_type["id"]) == "NONE":
            return problem(422, f"no {body['gpu']['id']} available with the requested configuration")
        count = body["gpu"].get("count", 1)
        pod = make_pod(f"new{len(self.pods) + 1:03d}", body["name"], gpu=gpu_type["id"], gpu_count=count,
                       cost_per_hr=round((gpu_type["securePrice"] or 0) * count, 4), image=body["image"],
                       volume_gb=(body.get("mounts") or {}).get("persistent", {}).get("size", 0))
        pod.update(runtime=None, ports=",".join(body.get("ports") or []))
        self.pods.append(pod)
        created = rest_pod(pod)
        created["status"] = "PROVISIONING"
        return web.json_response(created, status=201)

    async def _rest_action(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        action = body.get("action") if isinstance(body, dict) else None
        if refused := await self._rest_gate(request, _ACTION_ROOT.get(str(action), "podAction"), body):
            return refused
        if errors := action_body_errors(body):
            return problem(400, "request body failed validation", errors=errors)
        pod = self.pod(request.match_info["id"])
        if pod is None:
            return problem(404, "pod not found")
        if self.mutation_errors:
            return problem(500, "; ".join(self.mutation_errors))
        if action not in ACTIONS_BY_STATUS.get(v2_status(pod), []):
            return problem(409, f"cannot {action} a pod in status {v2_status(pod)}")
        if action == "terminate":
            self.pods.remove(pod)
            return web.Response(status=204)
        if action == "stop":
            pod.update(desiredStatus="EXITED", runtime=None)
        elif action == "start":
            pod.update(desiredStatus="RUNNING", runtime=make_runtime(uptime=0, gpu_count=pod["gpuCount"]))
        return web.json_response(rest_pod(pod))
