"""Cost so far: pod prices from the RunPod API, endpoint prices from the batch file, busy time per target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pistachio_tui.cli import exit_codes
from pistachio_tui.fleet.cost import Rate, cost_of, cost_summary, pod_id_for_url, pod_rates
from pistachio_tui.fleet.dispatch import BatchRunner, TargetStats
from pistachio_tui.fleet.serverless import ServerlessTarget
from pistachio_tui.fleet.spec import load_batch_file
from tests.fleet.fake_serverless import FakeServerless
from tests.fleet.test_batch_cli import SIM_WORKFLOW, run_cli
from tests.fleet.test_dispatch import FakeTarget, build, jobs
from pistachio_tui.sim.runpod import FakeRunPod


def test_pod_behind_a_url():
    assert pod_id_for_url("https://abc123xyz-8188.proxy.runpod.net") == "abc123xyz"
    assert pod_id_for_url("https://abc123xyz-8188.proxy.runpod.net/") == "abc123xyz"
    assert pod_id_for_url("https://abc123xyz-8188.proxy.runpod.net.evil.example") is None
    assert pod_id_for_url("http://192.168.1.5:8188") is None
    # Pistachio running on the pod itself talks to its ComfyUI over loopback.
    assert pod_id_for_url("http://127.0.0.1:8188", this_pod="abc123xyz") == "abc123xyz"
    assert pod_id_for_url("http://127.0.0.1:8188") is None


def test_pod_bills_busy_time_endpoint_bills_job_time():
    stats = TargetStats("t")
    stats.job_started(0.0)
    stats.job_started(5.0)   # overlaps the first
    stats.job_ended(0.0, 10.0)
    stats.job_ended(5.0, 20.0)
    stats.job_started(30.0)  # still running at t=40
    assert stats.busy_until(40.0) == 20.0 + 10.0
    assert stats.job_time_until(40.0) == 10.0 + 15.0 + 10.0
    pod = Rate(0.72 / 3600, False, "pod")
    endpoint = Rate(0.001, True, "file")
    assert cost_of(pod, stats, 40.0) == pytest.approx(0.72 / 3600 * 30)
    assert cost_of(endpoint, stats, 40.0) == pytest.approx(0.035)
    summary = cost_summary({"t": endpoint}, {"t": stats, "local": TargetStats("local")}, 40.0)
    assert summary["total"] == 0.035 and summary["targets"] == {"t": 0.035}
    assert summary["unpriced"] == ["local"]


async def test_runner_writes_the_cost_into_the_manifest(tmp_path):
    rates = {"pod": Rate(1.0, False, "pod"), "ep": Rate(2.0, True, "file")}
    runner = BatchRunner(jobs(6), [FakeTarget("pod"), FakeTarget("ep"), FakeTarget("home")], tmp_path, build,
                         rates=rates)
    result = await runner.run()
    stats = result.targets
    assert result.cost["targets"]["pod"] == round(stats["pod"].busy_s, 4)
    assert result.cost["targets"]["ep"] == round(2 * stats["ep"].job_s, 4)
    assert result.cost["unpriced"] == ["home"]
    assert json.loads((tmp_path / "manifest.json").read_text())["cost"] == result.cost


async def test_an_endpoint_costs_runpods_execution_time_not_the_queue_wait(tmp_path):
    """Four jobs queued at once on a one-worker endpoint: billed 4 × 0.1 s, though they waited up to 0.3 s."""
    endpoint = FakeServerless(job_seconds=0.1, workers=1)
    await endpoint.start()
    target = ServerlessTarget(endpoint.endpoint_id, endpoint.api_key, base_url=endpoint.url, poll_interval=0.01,
                              min_slots=4)
    runner = BatchRunner(jobs(4), [target], tmp_path, build, rates={target.name: Rate(1.0, True, "file")})
    try:
        result = await runner.run()
    finally:
        await runner.aclose()
        await endpoint.stop()
    assert result.ok
    assert result.cost["targets"][target.name] == pytest.approx(0.4)
    assert result.cost["billed_s"] == {target.name: pytest.approx(0.4)}
    assert result.targets[target.name].job_s > 0.8, "wall clock counted the queue wait"
    assert target.meter.delay_s > 0.5


async def test_pod_prices_come_from_the_runpod_api():
    servers = {"rented": "https://abc123xyz-8188.proxy.runpod.net", "h100": "https://def456uvw-8188.proxy.runpod.net",
               "home": "http://192.168.1.5:8188"}
    async with FakeRunPod() as fake:
        rates, note = await pod_rates(servers, fake.api_key, runpod_url=fake.url)
        assert note is None
        assert set(rates) == {"rented", "h100"}
        assert rates["rented"].per_s == pytest.approx(0.69 / 3600) and not rates["rented"].per_job
        assert "$0.69/h" in rates["rented"].source
        fake.reject_key = True
        rates, note = await pod_rates(servers, fake.api_key, runpod_url=fake.url)
        assert rates == {} and note.startswith("pod prices unknown")
        assert fake.api_key not in note
    rates, note = await pod_rates(servers, None)
    assert rates == {} and "RUNPOD_API_KEY" in note
    assert await pod_rates({"home": "http://192.168.1.5:8188"}, None) == ({}, None)


def test_batch_file_lists_endpoints_prices_and_output(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text('workflow = "wf.json"\noutput = "renders"\n'
                    'endpoints = ["plain", { id = "priced", cost_per_s = 0.00031 }]\n')
    spec = load_batch_file(path)
    assert [(e.id, e.cost_per_s) for e in spec.endpoints] == [("plain", None), ("priced", 0.00031)]
    assert spec.out_dir == tmp_path / "renders" and spec.name == "b"


@pytest.fixture
async def priced_world(monkeypatch):
    """A fake RunPod API that knows pod abc123xyz, a fake endpoint, and this machine as that pod."""
    async with FakeRunPod() as runpod:
        endpoint = FakeServerless(api_key=runpod.api_key, job_seconds=0.01)
        await endpoint.start()
        monkeypatch.setenv("RUNPOD_API_URL", runpod.url)
        monkeypatch.setenv("RUNPOD_API_KEY", runpod.api_key)
        monkeypatch.setenv("RUNPOD_SERVERLESS_URL", endpoint.url)
        # The simulator listens on loopback: as seen from pod abc123xyz, that is the pod's own ComfyUI.
        monkeypatch.setenv("RUNPOD_POD_ID", "abc123xyz")
        yield endpoint
        await endpoint.stop()


async def test_cli_json_and_manifest_carry_the_cost(priced_world, sim, tmp_path, capsys):
    workflow = tmp_path / "wf.json"
    workflow.write_text(Path(SIM_WORKFLOW).read_text())
    batch = tmp_path / "batch.toml"
    batch.write_text(f'workflow = "wf.json"\ncount = 4\noutput = "out"\n'
                     f'endpoints = [{{ id = "{priced_world.endpoint_id}", cost_per_s = 0.5 }}]\n')
    assert await run_cli(["batch", str(batch), "--server", sim.url, "--json"]) == exit_codes.OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["done"] == 4
    cost = summary["cost"]
    assert set(cost["rates"]) == {sim.url, f"endpoint:{priced_world.endpoint_id}"}
    assert cost["total"] == pytest.approx(sum(cost["targets"].values()), abs=1e-3)
    for name, target in summary["targets"].items():
        assert target["cost"] == cost["targets"][name]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["cost"] == cost
