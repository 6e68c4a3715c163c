"""A batch over three simulated ComfyUI servers and a fake serverless endpoint."""

import asyncio
import json

import pytest

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.fleet.comfy_target import ComfyTarget
from pistachio_tui.fleet.dispatch import BatchRunner
from pistachio_tui.fleet.serverless import ServerlessTarget
from pistachio_tui.fleet.spec import BatchSpec, expand
from pistachio_tui.sim.server import SimServer
from tests.fleet.fake_serverless import FakeServerless


def build(job):
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1,
                                                      "color": job.seed % 0xFFFFFF}},
        "2": {"class_type": "SlowSteps", "inputs": {"steps": 3, "delay": 0.0, "image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "batch", "images": ["2", 0]}},
    }


@pytest.fixture
async def fleet():
    sims = [SimServer(step_delay=0.002) for _ in range(3)]
    for sim in sims:
        await sim.start()
    endpoint = FakeServerless(job_seconds=0.01)
    await endpoint.start()
    yield sims, endpoint
    await endpoint.stop()
    for sim in sims:
        await sim.stop()


def make_targets(sims, endpoint):
    comfy = [ComfyTarget(ComfyClient(sim.url, timeout=2), name=f"sim{i}", poll_interval=0.02,
                         unreachable_grace=0.3) for i, sim in enumerate(sims)]
    serverless = ServerlessTarget(endpoint.endpoint_id, endpoint.api_key, base_url=endpoint.url,
                                  poll_interval=0.01)
    return comfy + [serverless]


async def test_sixty_jobs_survive_a_server_dying_halfway(fleet, tmp_path):
    sims, endpoint = fleet
    jobs = expand(BatchSpec(workflow="wf.json", count=60, seed_mode="increment", start_seed=1))
    targets = make_targets(sims, endpoint)
    done = []

    def on_event(event):
        if event.kind == "done":
            done.append(event)
            if len(done) == 30:
                asyncio.get_running_loop().create_task(sims[1].kill())

    result = await BatchRunner(jobs, targets, tmp_path, build, node_types={"EmptyImage", "SlowSteps", "SaveImage"},
                               on_event=on_event).run()
    for target in targets:
        await target.aclose()
    assert result.ok, (result.failed, result.stranded)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [j["job"] for j in manifest["jobs"]] == [j.id for j in jobs]
    assert sorted(j["params"]["seed"] for j in manifest["jobs"]) == list(range(1, 61))
    files = [f for j in manifest["jobs"] for f in j["files"]]
    assert len(files) == 60
    assert all((tmp_path / f).read_bytes().startswith(b"\x89PNG") for f in files)
    assert result.targets["sim1"].down
    assert {j["target"] for j in manifest["jobs"]} >= {"sim0", "sim2", "endpoint:ep123"}


async def test_targets_without_the_nodes_are_left_out(fleet, tmp_path):
    sims, endpoint = fleet
    targets = make_targets(sims, endpoint)[:1]
    result = await BatchRunner(expand(BatchSpec(workflow="wf.json", count=2)), targets, tmp_path, build,
                               node_types={"UltimateSDUpscale"}).run()
    await targets[0].aclose()
    assert result.targets["sim0"].down == "missing nodes: UltimateSDUpscale"
    assert len(result.stranded) == 2
