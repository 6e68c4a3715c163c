"""Async client for RunPod's pods: REST v2 first, GraphQL for what REST lacks.

::

    async with RunPodClient(api_key) as runpod:
        overview = await runpod.overview()      # account + pods
        await runpod.stop_pod(pod.id)

Which API answers is invisible to callers: both give the same typed models.

============================  =====================================  ==========================
call                          REST v2                                GraphQL
============================  =====================================  ==========================
pods(), pod()                 ``GET /v2/pods``, ``/v2/pods/{id}``    fallback (``myself.pods``)
start_pod() on-demand         ``POST /v2/pods/{id}/action`` start    fallback (``podResume``)
start_pod() spot              —                                      ``podBidResume`` (+ ``pod``)
pod_logs()                    ``GET /v2/pods/{id}/logs`` (SSE)       —
create_pod()                  ``GET /v2/templates/{id}``,            —
                              ``POST /v2/pods``
stop_pod(), terminate_pod()   ``POST /v2/pods/{id}/action``          fallback
gpu_types()                   ``GET /v2/catalog/gpus``               spot prices, fallback
account() / overview()        —                                      ``myself`` balance fields
============================  =====================================  ==========================

When the host has no REST v2 (``RestUnavailable``) the client says so once in
the log and uses GraphQL for the rest of its life. When GraphQL is gone, pods
and actions still work; the account shows as unknown and a spot pod resumes
with REST's plain start.

The key is sent as ``Authorization: Bearer``; it is kept out of ``repr``,
exception messages and log records (server-provided text is scrubbed too, in
case a proxy or the API ever echoes it back).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import replace
from typing import Any

import httpx

from pistachio_tui.config import env_override
from pistachio_tui.runpod import queries
from pistachio_tui.runpod.errors import (
    ApiKeyMissing,
    ApiKeyRejected,
    BadResponse,
    ConfirmationMismatch,
    GraphQLError,
    GraphQLUnavailable,
    PodNotFound,
    RateLimited,
    RunPodError,
    RunPodServerError,
    RunPodUnreachable,
)
from pistachio_tui.runpod.http import USER_AGENT, RunPodAuth, retry_after_s
from pistachio_tui.runpod.models import Account, GpuType, LogLine, LowestPrice, Overview, Pod
from pistachio_tui.runpod.rest import RestClient, RestUnavailable

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.runpod.io/graphql"
#: GraphQL error texts RunPod uses for a missing, wrong or read-only key.
_AUTH_ERROR = re.compile(r"unauthori[sz]ed|unauthenticated|api key|forbidden|not authenticated|permission", re.I)
_OPERATION = re.compile(r"^\s*(query|mutation)\s+(\w+)")


#: Pod types that resume only with a bid (spot).
SPOT_POD_TYPES = ("INTERRUPTABLE", "BID")


def api_url() -> str:
    """The GraphQL endpoint: ``$RUNPOD_API_URL`` (tests, proxies) or RunPod's own."""
    return env_override("RUNPOD_API_URL") or DEFAULT_API_URL


def rest_url(graphql_url: str) -> str:
    """The REST v2 base: ``$RUNPOD_REST_URL``, else ``/v2`` on the GraphQL host (both live on
    ``api.runpod.io``, and a proxy or fake serving one serves the other)."""
    override = env_override("RUNPOD_REST_URL")
    if override:
        return override
    url = httpx.URL(graphql_url)
    return str(url.copy_with(path="/v2", query=None, fragment=None))


def load_api_key() -> str:
    """The configured RunPod key (env var or secrets file), else ``ApiKeyMissing``.

    A secrets file readable by others raises ``pistachio_tui.config.ConfigError``.
    """
    from pistachio_tui import config

    key = config.get_secret("RUNPOD_API_KEY")
    if not key:
        raise ApiKeyMissing(str(config.config_dir() / config.SECRETS_FILE))
    return key


class RunPodClient:
    """RunPod's APIs for one API key: REST v2 first, GraphQL where REST has nothing."""

    def __init__(self, api_key: str, *, url: str | None = None, rest: str | None = None, timeout: float = 15.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not api_key:
            raise ApiKeyMissing()
        # The key travels in the Authorization header only: an old-style
        # ``?api_key=`` in the URL would end up in httpx's request log lines.
        self.url = str(httpx.URL(url or api_url()).copy_remove_param("api_key"))
        self.timeout = timeout
        self._key = api_key
        #: The URL as shown in messages, in case the key hides elsewhere in it.
        self._shown_url = self._scrub(self.url)
        self._http = httpx.AsyncClient(
            auth=RunPodAuth(api_key, extra_origins=[self.url]),
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
        )
        self._rest = RestClient(api_key, rest or rest_url(self.url), timeout=timeout, transport=transport)
        #: False once the host showed it has no REST v2: GraphQL for everything from then on.
        self._rest_ok = True

    def __repr__(self) -> str:
        return f"RunPodClient(url={self._shown_url!r})"

    @property
    def uses_rest(self) -> bool:
        """True until the host shows it has no REST v2."""
        return self._rest_ok

    def _rest_gone(self, exc: RestUnavailable) -> None:
        if self._rest_ok:
            log.info("%s; using the GraphQL API instead", exc.message)
        self._rest_ok = False

    async def __aenter__(self) -> RunPodClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._rest.aclose()

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[RUNPOD_API_KEY]")

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one operation and return its ``data``; every failure is a ``RunPodError``."""
        match = _OPERATION.match(query)
        kind, name = match.groups() if match else ("query", "anonymous")
        body: dict[str, Any] = {"query": query}
        if variables:
            body["variables"] = variables
        started = time.monotonic()
        try:
            response = await self._http.post(self.url, json=body)
        except httpx.TimeoutException:
            raise RunPodUnreachable(
                f"The RunPod API at {self._shown_url} did not answer within {self.timeout:g} s"
                " — check your connection, or try again"
            ) from None
        except httpx.HTTPError as exc:
            reason = self._scrub(str(exc)) or type(exc).__name__
            raise RunPodUnreachable(
                f"Cannot reach the RunPod API at {self._shown_url} — check your internet connection ({reason})"
            ) from None
        log.debug("RunPod %s %s: HTTP %s in %.2f s", kind, name, response.status_code,
                  time.monotonic() - started)
        return self._data(response, kind)

    def _data(self, response: httpx.Response, kind: str) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise ApiKeyRejected()
        if status == 429:
            raise RateLimited(retry_after_s(response.headers.get("Retry-After")))
        try:
            payload = response.json()
        except ValueError:
            payload = None
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if errors:
            self._raise_graphql(errors, kind)
        if status in (404, 410, 501):
            raise GraphQLUnavailable(f"RunPod's GraphQL API is not available at {self._shown_url} (HTTP {status})")
        if status >= 400:
            raise RunPodServerError(
                f"The RunPod API answered HTTP {status} — RunPod may be having trouble; try again shortly",
                status=status,
            )
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            raise BadResponse(f"The RunPod API at {self._shown_url} answered something that is not GraphQL data")
        return data

    def _raise_graphql(self, errors: Any, kind: str) -> None:
        items = errors if isinstance(errors, list) else [errors]
        messages = [
            self._scrub(str(e.get("message") if isinstance(e, dict) else e)) for e in items
        ]
        if any(_AUTH_ERROR.search(m) for m in messages):
            hint = " (it needs read/write access to start or stop pods)" if kind == "mutation" else ""
            raise ApiKeyRejected(hint)
        raise GraphQLError(messages)

    @staticmethod
    def _myself(data: dict[str, Any]) -> dict[str, Any]:
        myself = data.get("myself")
        if not isinstance(myself, dict):
            raise BadResponse("RunPod answered without the account ('myself') — is the key valid?")
        return myself

    async def pods(self) -> list[Pod]:
        """Every pod of the account, in RunPod's order."""
        if self._rest_ok:
            try:
                return [Pod.from_rest(p) for p in await self._rest.pods()]
            except RestUnavailable as exc:
                self._rest_gone(exc)
        myself = self._myself(await self.execute(queries.PODS))
        return [Pod.from_wire(p) for p in myself.get("pods") or []]

    async def pod(self, pod_id: str) -> Pod:
        """One pod by id; ``PodNotFound`` when the account has none with that id."""
        if self._rest_ok:
            try:
                return Pod.from_rest(await self._rest.pod(pod_id))
            except RestUnavailable as exc:
                self._rest_gone(exc)
        for pod in await self.pods():
            if pod.id == pod_id:
                return pod
        raise PodNotFound(pod_id)

    async def account(self) -> Account:
        """Balance, current spend per hour and spend limit (GraphQL: REST v2 has no account)."""
        return Account.from_wire(self._myself(await self.execute(queries.ACCOUNT)))

    async def overview(self) -> Overview:
        """Account and pods — what a refreshing screen should poll.

        Over GraphQL alone this is one request. With REST, pods come from REST
        and the account from GraphQL; if GraphQL is gone the account is unknown
        (all None) rather than the whole refresh failing.
        """
        if self._rest_ok:
            try:
                pods = [Pod.from_rest(p) for p in await self._rest.pods()]
            except RestUnavailable as exc:
                self._rest_gone(exc)
        if not self._rest_ok:
            myself = self._myself(await self.execute(queries.OVERVIEW))
            return Overview(Account.from_wire(myself), [Pod.from_wire(p) for p in myself.get("pods") or []])
        try:
            account = await self.account()
        except GraphQLUnavailable:
            account = Account(None, None, None)
        return Overview(account, pods)

    async def gpu_types(self) -> list[GpuType]:
        """Every GPU type with its $/h prices (one GPU), cheapest on-demand first.

        From REST's catalog, with spot prices added from GraphQL (the catalog has
        none) when GraphQL answers; without REST, from GraphQL alone.
        """
        catalog: list[GpuType] | None = None
        if self._rest_ok:
            try:
                catalog = [GpuType.from_rest(t) for t in await self._rest.gpu_types()]
            except RestUnavailable as exc:
                self._rest_gone(exc)
        try:
            raw = (await self.execute(queries.GPU_TYPES)).get("gpuTypes")
            if not isinstance(raw, list):
                raise BadResponse("RunPod answered without a GPU type list")
        except RunPodError:
            if catalog is None:
                raise
            return _by_price(catalog)  # spot prices are a nicety: the catalog stands alone
        graphql = [GpuType.from_wire(r) for r in raw]
        if catalog is None:
            return _by_price(graphql)
        spot = {t.id: t for t in graphql}
        return _by_price([_with_spot(t, spot.get(t.id)) for t in catalog])

    async def start_pod(self, pod_id: str, gpu_count: int | None = None, *, bid_per_gpu: float | None = None) -> str:
        """Resume a stopped pod with ``gpu_count`` GPUs (None: as many as it had); returns the new desired status.

        A spot pod resumes only with a bid (GraphQL ``podBidResume``): ``bid_per_gpu``,
        else RunPod's lowest bid to resume. An on-demand pod resumes through REST,
        unless it is to get another GPU count, which only GraphQL's ``podResume`` can do.
        """
        spot = await self._spot_info(pod_id)
        if spot is not None:
            bid = bid_per_gpu if bid_per_gpu is not None else spot
            data = await self.execute(queries.POD_BID_RESUME, {"input": {
                "podId": pod_id, "bidPerGpu": bid, "gpuCount": gpu_count or 1}})
            return self._desired_status(data, "podBidResume")
        if self._rest_ok:
            try:
                if gpu_count is None or gpu_count == Pod.from_rest(await self._rest.pod(pod_id)).gpu_count:
                    return await self._rest_action(pod_id, "start")
            except RestUnavailable as exc:
                self._rest_gone(exc)
        data = await self.execute(queries.POD_RESUME, {"input": {"podId": pod_id, "gpuCount": gpu_count or 1}})
        return self._desired_status(data, "podResume")

    async def _spot_info(self, pod_id: str) -> float | None:
        """The lowest bid to resume a spot pod, None for an on-demand pod (or when GraphQL is gone)."""
        try:
            data = await self.execute(queries.POD_TYPE, {"input": {"podId": pod_id}})
        except GraphQLUnavailable:
            return None
        pod = data.get("pod")
        if not isinstance(pod, dict):
            raise PodNotFound(pod_id)
        if str(pod.get("podType") or "").upper() not in SPOT_POD_TYPES:
            return None
        bid = pod.get("lowestBidPriceToResume")
        if not isinstance(bid, (int, float)) or bid <= 0:
            raise BadResponse(f"RunPod gave no bid price to resume spot pod {pod_id}; pass a bid")
        return float(bid)

    async def stop_pod(self, pod_id: str) -> str:
        """Stop a pod (its volume is kept, billing for GPUs ends); returns the new desired status."""
        if self._rest_ok:
            try:
                return await self._rest_action(pod_id, "stop")
            except RestUnavailable as exc:
                self._rest_gone(exc)
        data = await self.execute(queries.POD_STOP, {"input": {"podId": pod_id}})
        return self._desired_status(data, "podStop")

    async def terminate_pod(self, pod_id: str, *, confirm_name: str) -> Pod:
        """Delete a pod and its volume for good, only if ``confirm_name`` is its exact name.

        The name must come from the user (typed, not copied by code): it is the
        one guard against terminating the wrong pod. A pod without a name is
        confirmed by its id. Returns the pod as it was.
        """
        pod = await self.pod(pod_id)
        expected = pod.name or pod.id
        if confirm_name != expected:
            raise ConfirmationMismatch(pod.id, expected)
        if self._rest_ok:
            try:
                await self._rest.action(pod.id, "terminate")
                return pod
            except RestUnavailable as exc:
                self._rest_gone(exc)
        await self.execute(queries.POD_TERMINATE, {"input": {"podId": pod.id}})
        return pod

    async def pod_logs(self, pod_id: str, tail: int = 200) -> list[LogLine]:
        """The pod's last ``tail`` log lines (container and system), oldest first. REST only."""
        try:
            return [LogLine.from_rest(e) for e in await self._rest.pod_logs(pod_id, tail=tail)]
        except RestUnavailable as exc:
            self._rest_gone(exc)
            raise RunPodError(f"Pod logs need RunPod's REST API v2, which {self._rest.base_url} does not serve; "
                              "the RunPod console shows them") from None

    async def gpu_offer(self, gpu_type: str, count: int = 1) -> GpuType:
        """One GPU type with its price and current stock for ``count`` GPUs (REST's catalog)."""
        for raw in await self._rest.gpu_types(availability=True, count=count):
            gpu = GpuType.from_rest(raw)
            if gpu_type in (gpu.id, gpu.display_name):
                return gpu
        raise BadResponse(f"RunPod has no GPU type {gpu_type!r} — `pistachio pods gpus` lists them")

    async def create_pod(self, *, name: str, template_id: str, gpu_type: str, gpu_count: int = 1,
                         network_volume: str | None = None, cloud: str | None = None) -> Pod:
        """A new on-demand pod from a template (REST only: GraphQL's deploy takes other inputs).

        The template's container settings (image, args, disk, ports, env,
        registry, volume) are spread into the request, as RunPod's v2 API asks;
        ``network_volume`` replaces the template's own volume, mounted where
        the template puts it.
        """
        template = await self._rest.template(template_id)
        body: dict[str, Any] = {key: template[key] for key in ("image", "args", "disk", "ports", "env", "registry")
                                if template.get(key) not in (None, "", [], {})}
        body.update(name=name, gpu={"id": gpu_type, "count": gpu_count})
        persistent = (template.get("mounts") or {}).get("persistent")
        if network_volume:
            path = persistent.get("path") if isinstance(persistent, dict) else "/workspace"
            body["mounts"] = {"network": [{"volumeId": network_volume, "path": path or "/workspace"}]}
        elif isinstance(persistent, dict):
            body["mounts"] = {"persistent": persistent}
        if cloud:
            body["cloud"] = cloud
        return Pod.from_rest(await self._rest.create_pod(body))

    async def _rest_action(self, pod_id: str, action: str) -> str:
        pod = await self._rest.action(pod_id, action)
        if pod is None:
            raise BadResponse(f"RunPod answered the {action} of pod {pod_id} without the pod")
        return Pod.from_rest(pod).desired_status

    @staticmethod
    def _desired_status(data: dict[str, Any], field: str) -> str:
        result = data.get(field)
        if not isinstance(result, dict):
            raise BadResponse(f"RunPod answered {field} without the pod")
        return str(result.get("desiredStatus") or "")


def _by_price(types: list[GpuType]) -> list[GpuType]:
    return sorted(types, key=lambda t: (t.on_demand_price is None, t.on_demand_price or 0.0, t.display_name))


def _with_spot(rest: GpuType, graphql: GpuType | None) -> GpuType:
    """A catalog GPU type with GraphQL's spot prices, which the catalog does not carry."""
    if graphql is None:
        return rest
    return replace(rest, secure_spot_price=graphql.secure_spot_price, community_spot_price=graphql.community_spot_price,
                   lowest=LowestPrice(rest.on_demand_price, graphql.lowest.minimum_bid))
