"""RunPodClient against the fake GraphQL API: reads, mutations, every error path."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest

from pistachio_tui.runpod import queries
from pistachio_tui.runpod.api import DEFAULT_API_URL, RunPodClient, api_url, load_api_key
from pistachio_tui.runpod.errors import (
    ApiKeyMissing,
    ApiKeyRejected,
    BadResponse,
    ConfirmationMismatch,
    GraphQLError,
    PodNotFound,
    RateLimited,
    RunPodError,
    RunPodServerError,
    RunPodUnreachable,
)
from pistachio_tui.sim.runpod import FakeRunPod, make_pod

SECRET = "rpa_SECRET123"


async def test_pods_are_typed(runpod):
    pods = {p.id: p for p in await runpod.pods()}
    busy = pods["abc123xyz"]
    assert busy.name == "comfy-4090"
    assert busy.gpu_display_name == "NVIDIA GeForce RTX 4090"
    assert busy.status == "running" and busy.is_running
    assert busy.cost_per_hr == pytest.approx(0.69)
    assert busy.runtime.uptime_seconds == 7380
    assert busy.runtime.gpu_util_percent == 87.0
    assert busy.runtime.container.memory_percent == 12
    ssh = [p for p in busy.runtime.ports if p.private_port == 22][0]
    assert (ssh.ip, ssh.public_port, ssh.is_ip_public, ssh.type) == ("203.0.113.7", 40022, True, "tcp")
    stopped = pods["ghi789rst"]
    assert stopped.status == "stopped" and stopped.runtime is None and not stopped.is_running


async def test_overview_is_pods_from_rest_and_the_account_from_graphql(runpod, fake_runpod):
    overview = await runpod.overview()
    assert [(r["api"], r["root"]) for r in fake_runpod.requests] == [("rest", "myself"), ("graphql", "myself")]
    assert overview.account.client_balance == 25.0
    assert overview.account.current_spend_per_hr == pytest.approx(0.69 + 2.99)
    assert overview.account.hours_left == pytest.approx(25.0 / 3.68)
    assert [p.id for p in overview.pods] == ["abc123xyz", "def456uvw", "ghi789rst"]


async def test_without_rest_v2_the_overview_is_one_graphql_request(runpod, fake_runpod):
    fake_runpod.rest_available = False
    first = await runpod.overview()
    second = await runpod.overview()
    assert [r["api"] for r in fake_runpod.requests] == ["rest", "graphql", "graphql"], "v2 is tried once"
    assert first == second and len(first.pods) == 3 and first.account.client_balance == 25.0
    assert not runpod.uses_rest


async def test_the_day_graphql_is_switched_off(runpod, fake_runpod):
    fake_runpod.graphql_available = False
    overview = await runpod.overview()
    assert len(overview.pods) == 3 and overview.account.client_balance is None
    assert await runpod.stop_pod("abc123xyz") == "EXITED"
    assert await runpod.start_pod("abc123xyz") == "RUNNING"
    assert [t.id for t in await runpod.gpu_types()][0] == "NVIDIA A40"
    await runpod.terminate_pod("ghi789rst", confirm_name="old-a40")
    assert {r["api"] for r in fake_runpod.requests if r["root"] != "pod"} >= {"rest"}


async def test_account_alone(runpod):
    account = await runpod.account()
    assert account.spend_limit == 80.0


async def test_gpu_types_cheapest_on_demand_first(runpod):
    types = await runpod.gpu_types()
    assert [t.display_name for t in types] == ["A40", "RTX 4090", "H100 80GB HBM3", "B200"]
    rtx = types[1]
    assert (rtx.on_demand_price, rtx.spot_price, rtx.memory_in_gb) == (0.69, 0.35, 24)
    assert types[0].spot_price is None
    assert types[-1].on_demand_price is None


async def test_stop_then_start_with_gpu_count(runpod, fake_runpod):
    assert await runpod.stop_pod("abc123xyz") == "EXITED"
    assert (await runpod.pod("abc123xyz")).status == "stopped"
    assert await runpod.start_pod("abc123xyz", gpu_count=2) == "RUNNING"
    pod = await runpod.pod("abc123xyz")
    assert pod.is_running and pod.gpu_count == 2
    resume = [r for r in fake_runpod.requests if r["root"] == "podResume"][0]
    assert resume["variables"] == {"input": {"podId": "abc123xyz", "gpuCount": 2}}


async def test_terminate_only_with_the_exact_name(runpod, fake_runpod):
    with pytest.raises(ConfirmationMismatch, match="'old-a40'"):
        await runpod.terminate_pod("ghi789rst", confirm_name="old-a4")
    assert fake_runpod.pod("ghi789rst") is not None
    assert "podTerminate" not in fake_runpod.operations()
    pod = await runpod.terminate_pod("ghi789rst", confirm_name="old-a40")
    assert pod.name == "old-a40"
    assert fake_runpod.pod("ghi789rst") is None
    with pytest.raises(PodNotFound, match="ghi789rst"):
        await runpod.pod("ghi789rst")


async def test_unnamed_pod_is_confirmed_by_its_id(runpod, fake_runpod):
    fake_runpod.pods.append(make_pod("anon1", ""))
    with pytest.raises(ConfirmationMismatch):
        await runpod.terminate_pod("anon1", confirm_name="")
    await runpod.terminate_pod("anon1", confirm_name="anon1")
    assert fake_runpod.pod("anon1") is None


async def test_mutation_on_unknown_pod_lists_the_graphql_error(runpod, fake_runpod):
    fake_runpod.rest_available = False
    with pytest.raises(GraphQLError) as info:
        await runpod.stop_pod("nope")
    assert info.value.messages == ["Pod nope not found"]
    assert "RunPod refused the request: Pod nope not found" in str(info.value)


async def test_an_action_on_an_unknown_pod_is_pod_not_found(runpod):
    with pytest.raises(PodNotFound, match="'nope'"):
        await runpod.stop_pod("nope")


async def test_pod_ids_travel_as_variables_not_in_the_text(runpod, fake_runpod):
    with pytest.raises(PodNotFound):
        await runpod.stop_pod('x" } ) { id } #')
    assert not fake_runpod.requests, "an id that cannot be RunPod's is not sent as a path"
    fake_runpod.rest_available = False
    await runpod.pods()
    with pytest.raises(GraphQLError):
        await runpod.stop_pod('x" } ) { id } #')
    assert 'x"' not in fake_runpod.requests[-1]["operation"]


async def test_http_401_means_bad_key(fake_runpod):
    async with RunPodClient("rpa_wrong", url=fake_runpod.url) as client:
        with pytest.raises(ApiKeyRejected) as info:
            await client.pods()
    assert str(info.value) == (
        "RunPod rejected the API key — create one at https://www.runpod.io/console/user/settings"
        " and set RUNPOD_API_KEY"
    )


async def test_graphql_unauthorized_means_bad_key_and_mutations_mention_write_access(runpod, fake_runpod):
    fake_runpod.graphql_errors = ["Unauthorized"]
    fake_runpod.rest_available = False
    with pytest.raises(ApiKeyRejected):
        await runpod.pods()
    with pytest.raises(ApiKeyRejected, match="read/write"):
        await runpod.stop_pod("abc123xyz")


async def test_graphql_errors_are_all_listed(runpod, fake_runpod):
    fake_runpod.graphql_errors = ["Something broke", "And another"]
    fake_runpod.rest_available = False
    with pytest.raises(GraphQLError, match="Something broke; And another"):
        await runpod.gpu_types()


@pytest.mark.parametrize(("retry_after", "expected"), [(30, 30.0), (True, None)])
async def test_429_is_rate_limited_with_retry_after(runpod, fake_runpod, retry_after, expected):
    fake_runpod.rate_limited = retry_after
    with pytest.raises(RateLimited) as info:
        await runpod.pods()
    assert info.value.retry_after == expected
    assert ("in 30 s" if expected else "in a minute") in info.value.message


async def test_5xx_is_a_server_error(runpod, fake_runpod):
    fake_runpod.server_error = 502
    with pytest.raises(RunPodServerError, match="HTTP 502") as info:
        await runpod.pods()
    assert info.value.status == 502


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_unreachable_api():
    url = f"http://127.0.0.1:{_free_port()}"
    async with RunPodClient(SECRET, url=f"{url}/graphql", timeout=2.0) as client:
        with pytest.raises(RunPodUnreachable, match=f"Cannot reach the RunPod API at {url}"):
            await client.pods()


async def test_slow_answer_hits_the_client_timeout(fake_runpod):
    fake_runpod.delay = 5.0
    async with RunPodClient(fake_runpod.api_key, url=fake_runpod.url, timeout=0.2) as client:
        with pytest.raises(RunPodUnreachable, match="did not answer within 0.2 s"):
            await client.pods()


async def test_slow_answer_within_the_timeout_is_fine(fake_runpod):
    fake_runpod.delay = 0.05
    async with RunPodClient(fake_runpod.api_key, url=fake_runpod.url, timeout=2.0) as client:
        assert len(await client.pods()) == 3


def _answering(status: int, body: bytes | str) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, content=body))


@pytest.mark.parametrize("body", [b"<html>not json</html>", b'{"data": null}', b'{"data": {"myself": null}}',
                                  b'{"data": {"myself": {"pods": [{"name": "no id"}]}}}',
                                  b'{"data": {"myself": {"pods": [{"id": "x", "costPerHr": "cheap"}]}}}'])
async def test_garbage_is_a_bad_response(body):
    async with RunPodClient(SECRET, url="http://runpod.test/graphql", transport=_answering(200, body)) as client:
        with pytest.raises(BadResponse):
            await client.pods()


async def test_nulls_where_runpod_sends_them(fake_runpod, runpod):
    fake_runpod.pods[:] = [{"id": "p1", "name": None, "desiredStatus": "RUNNING", "costPerHr": None,
                            "machine": None, "runtime": {"uptimeInSeconds": None, "ports": None,
                                                         "gpus": [{"id": "g", "gpuUtilPercent": None}]}}]
    (pod,) = await runpod.pods()
    assert pod.name == "" and pod.cost_per_hr == 0.0 and pod.gpu_display_name == ""
    assert pod.runtime.uptime_seconds == 0 and pod.runtime.ports == []
    assert pod.runtime.gpu_util_percent is None


def test_endpoint_from_env(monkeypatch):
    assert api_url() == DEFAULT_API_URL == "https://api.runpod.io/graphql"
    monkeypatch.setenv("RUNPOD_API_URL", "http://127.0.0.1:9/graphql")
    assert api_url() == "http://127.0.0.1:9/graphql"
    assert RunPodClient(SECRET).url == "http://127.0.0.1:9/graphql"


def test_key_from_config(monkeypatch, _isolated_config):
    with pytest.raises(ApiKeyMissing, match="RUNPOD_API_KEY") as info:
        load_api_key()
    assert str(_isolated_config / "secrets.toml") in info.value.message
    monkeypatch.setenv("RUNPOD_API_KEY", SECRET)
    assert load_api_key() == SECRET


def test_empty_key_is_refused_up_front():
    with pytest.raises(ApiKeyMissing):
        RunPodClient("")


def test_every_operation_lives_in_the_queries_module():
    assert "uptimeInSeconds" in queries.OVERVIEW and "clientBalance" in queries.OVERVIEW
    assert "lowestPrice(input: {gpuCount: 1})" in queries.GPU_TYPES
    assert "PodTerminateInput!" in queries.POD_TERMINATE


async def test_the_key_never_leaks(caplog):
    """Every error path, with a key the server even echoes back: never in messages, reprs or logs."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async with FakeRunPod(api_key=SECRET) as fake:
        async with RunPodClient(SECRET, url=fake.url, timeout=0.3) as client:
            seen.append(repr(client))
            switches = [
                ("reject_key", True), ("graphql_errors", [f"Unauthorized key {SECRET}"]),
                ("graphql_errors", [f"bad thing for Bearer {SECRET}"]), ("rate_limited", 5),
                ("server_error", 500), ("delay", 2.0),
            ]
            for name, value in switches:
                default = getattr(fake, name)
                setattr(fake, name, value)
                # GraphQL errors reach the calls only where GraphQL answers them.
                fake.rest_available = name != "graphql_errors"
                for call in (client.pods, client.gpu_types, lambda: client.stop_pod("abc123xyz"),
                             lambda: client.terminate_pod("abc123xyz", confirm_name="comfy-4090")):
                    with pytest.raises(RunPodError) as info:
                        await call()
                    seen += [str(info.value), repr(info.value), info.value.message,
                             repr(info.value.__cause__), repr(info.value.__context__)]
                setattr(fake, name, default)
                fake.rest_available = True
            seen.append(repr(await client.pods()))
        async with RunPodClient(SECRET, url=f"{fake.url}?api_key={SECRET}") as client:
            assert client.url == fake.url
            assert len(await client.pods()) == 3
        url = fake.url
    await fake.stop()
    for dead_url in (url, f"{url}?api_key={SECRET}"):
        async with RunPodClient(SECRET, url=dead_url, timeout=0.3) as client:
            with pytest.raises(RunPodUnreachable) as info:
                await client.pods()
            seen += [str(info.value), repr(info.value), repr(client)]
    for transport_error in (httpx.ConnectError(f"boom {SECRET}"), httpx.ReadError(f"boom {SECRET}")):
        def fail(request, exc=transport_error):
            raise exc
        async with RunPodClient(SECRET, url=url, transport=httpx.MockTransport(fail)) as client:
            with pytest.raises(RunPodUnreachable) as info:
                await client.pods()
            seen += [str(info.value), repr(info.value)]
    seen += [r.getMessage() for r in caplog.records] + [repr(r.__dict__) for r in caplog.records]
    assert len(seen) > 50
    leaks = [text for text in seen if "SECRET123" in text]
    assert leaks == []


async def test_make_pod_helper_matches_the_client(runpod, fake_runpod):
    fake_runpod.pods.append(make_pod("new1", "fresh", running=False, cost_per_hr=1.5))
    pod = await runpod.pod("new1")
    # REST v2 prices a stopped pod at what its GPUs bill now: nothing.
    assert (pod.status, pod.cost_per_hr) == ("stopped", 0.0)
