"""REST v2 first, GraphQL for what REST lacks: the same typed pods whichever answers."""

from __future__ import annotations

import pytest

from pistachio_tui.runpod.errors import ActionNotAllowed, RateLimited, RunPodServerError
from pistachio_tui.runpod.models import Pod
from pistachio_tui.runpod.rest import RestClient
from pistachio_tui.sim.runpod import make_pod
from pistachio_tui.sim.runpod_rest import rest_pod


async def test_both_apis_give_the_same_pods(runpod, fake_runpod):
    from_rest = await runpod.pods()
    fake_runpod.rest_available = False
    from_graphql = await runpod.pods()
    running = [(p.id, p.status, p.gpu_count, p.cost_per_hr, p.exposed_ports) for p in from_rest if p.is_running]
    assert running == [(p.id, p.status, p.gpu_count, p.cost_per_hr, p.exposed_ports)
                       for p in from_graphql if p.is_running]
    assert [p.runtime.gpu_util_percent for p in from_rest if p.runtime] == [
        p.runtime.gpu_util_percent for p in from_graphql if p.runtime]


def test_a_pod_being_provisioned_bills_and_shows_as_starting():
    wire = rest_pod(make_pod("p1", "new"))
    wire.update(status="PROVISIONING", runtime=None)
    pod = Pod.from_rest(wire)
    assert pod.is_running and pod.status == "starting"


def test_rest_runtime_ports_and_volume():
    pod = Pod.from_rest(rest_pod(make_pod("p1", "x", volume_gb=50)))
    assert pod.volume_in_gb == 50 and pod.exposed_ports == ("8188/http", "22/tcp")
    ssh = [p for p in pod.runtime.ports if p.private_port == 22][0]
    assert ssh.is_ip_public and ssh.ip == "203.0.113.7" and ssh.type == "tcp"


async def test_a_spot_pod_resumes_with_a_bid(runpod, fake_runpod):
    fake_runpod.pods.append(make_pod("spot1", "cheap", running=False, pod_type="INTERRUPTABLE", bid=0.21))
    assert await runpod.start_pod("spot1") == "RUNNING"
    bids = [r for r in fake_runpod.requests if r["root"] == "podBidResume"]
    assert [b["variables"]["input"] for b in bids] == [{"podId": "spot1", "bidPerGpu": 0.21, "gpuCount": 1}]
    await runpod.stop_pod("spot1")
    await runpod.start_pod("spot1", bid_per_gpu=0.3)
    assert fake_runpod.pod("spot1")["costPerHr"] == 0.3


async def test_an_on_demand_pod_resumes_through_rest(runpod, fake_runpod):
    assert await runpod.start_pod("ghi789rst") == "RUNNING"
    assert [(r["api"], r["root"]) for r in fake_runpod.requests][-1] == ("rest", "podResume")
    assert not [r for r in fake_runpod.requests if r["root"] == "podBidResume"]


async def test_an_action_the_status_does_not_allow_is_explained(runpod):
    with pytest.raises(ActionNotAllowed, match="cannot start a pod in status RUNNING"):
        await runpod.start_pod("abc123xyz")


async def test_the_fake_refuses_a_body_outside_the_schema(fake_runpod):
    client = RestClient(fake_runpod.api_key, fake_runpod.url.replace("/graphql", "/v2"))
    try:
        with pytest.raises(RunPodServerError, match="additional properties 'force' not allowed"):
            await client.request("POST", "/pods/abc123xyz/action", json={"action": "stop", "force": True})
    finally:
        await client.aclose()
    assert fake_runpod.pod("abc123xyz")["desiredStatus"] == "RUNNING"


@pytest.mark.parametrize(("retry_after", "expected"), [(12, 12.0), (True, None)])
async def test_rest_429_is_rate_limited(runpod, fake_runpod, retry_after, expected):
    fake_runpod.rate_limited = retry_after
    with pytest.raises(RateLimited) as info:
        await runpod.pods()
    assert info.value.retry_after == expected
    assert fake_runpod.requests[-1]["api"] == "rest"


async def test_a_problem_detail_is_shown(runpod, fake_runpod):
    fake_runpod.mutation_errors = ["host is in maintenance"]
    with pytest.raises(RunPodServerError, match="host is in maintenance"):
        await runpod.stop_pod("abc123xyz")


async def test_every_request_says_who_sends_it(runpod, fake_runpod):
    await runpod.overview()
    agents = {r["user_agent"] for r in fake_runpod.requests}
    assert len(agents) == 1 and agents.pop().startswith("pistachio-tui/")


async def test_gpu_prices_from_the_catalog_with_spot_prices_from_graphql(runpod, fake_runpod):
    rtx = next(t for t in await runpod.gpu_types() if t.id == "NVIDIA GeForce RTX 4090")
    assert (rtx.on_demand_price, rtx.spot_price) == (0.69, 0.35)
    fake_runpod.graphql_errors = ["Something broke"]
    rtx = next(t for t in await runpod.gpu_types() if t.id == "NVIDIA GeForce RTX 4090")
    assert (rtx.on_demand_price, rtx.spot_price) == (0.69, None), "without GraphQL the catalog stands alone"
