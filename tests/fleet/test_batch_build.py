"""prepare_batch: the one way the CLI and the Batch screen set up a batch; quick sweeps; default folders."""

from __future__ import annotations

import json

import pytest

from pistachio_tui.config import ServerConfig
from pistachio_tui.fleet.build import (
    BatchSetupError,
    NoReachableTarget,
    batches_dir,
    default_out_dir,
    prepare_batch,
    quick_sweep,
)
from pistachio_tui.fleet.spec import BatchSpec, BatchSpecError, EndpointSpec
from pistachio_tui.workflow.errors import WorkflowError
from tests.fleet.test_batch_cli import SIM_WORKFLOW

DEAD = ServerConfig("dead", "http://127.0.0.1:1")


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PISTACHIO_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_default_output_folder_is_named_after_the_batch(data_dir, tmp_path):
    assert batches_dir() == data_dir / "batches"
    assert default_out_dir(BatchSpec(workflow=tmp_path / "wf.json", name="my batch")) == data_dir / "batches/my-batch"
    assert default_out_dir(BatchSpec(workflow=tmp_path / "portrait.json")) == data_dir / "batches/portrait"
    assert default_out_dir(BatchSpec(workflow=tmp_path / "wf.json", out_dir=tmp_path / "o")) == tmp_path / "o"


async def test_missing_workflow_names_the_file(tmp_path):
    with pytest.raises(BatchSpecError, match="nothere.json not found"):
        await prepare_batch(BatchSpec(workflow=tmp_path / "nothere.json"), [DEAD])


async def test_no_server_answering_says_which_and_why():
    with pytest.raises(NoReachableTarget, match="dead: Cannot reach"):
        await prepare_batch(BatchSpec(workflow=SIM_WORKFLOW), [DEAD])


async def test_endpoints_need_a_key():
    with pytest.raises(BatchSetupError, match="RUNPOD_API_KEY"):
        await prepare_batch(BatchSpec(workflow=SIM_WORKFLOW, endpoints=[EndpointSpec("ep")]), [])


async def test_seedless_sweep_is_refused_before_anything_runs(sim, tmp_path):
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
              "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["1", 0]}}}
    spec = quick_sweep(prompt, "flat", 3, "random")
    with pytest.raises(WorkflowError, match="no seed to vary"):
        await prepare_batch(spec, [ServerConfig("sim", sim.url)])


async def test_quick_sweep_runs_on_a_server_and_skips_a_dead_one(sim, data_dir):
    prompt = json.loads(SIM_WORKFLOW.read_text())
    spec = quick_sweep(prompt, "sim txt2img", 3, "random", stamp="1")
    again = quick_sweep(prompt, "sim txt2img", 3, "random", stamp="2")
    assert spec.out_dir == data_dir / "batches/sim-txt2img-1"
    assert json.loads(spec.workflow.read_text()) == prompt
    prepared = await prepare_batch(spec, [DEAD, ServerConfig("sim", sim.url)])
    assert set(prepared.unreachable) == {"dead"} and prepared.target_names == ["dead", "sim"]
    second = await prepare_batch(again, [ServerConfig("sim", sim.url)])
    # A new sweep makes new images.
    assert {j.seed for j in prepared.jobs}.isdisjoint({j.seed for j in second.jobs})
    runner = prepared.runner()
    try:
        result = await runner.run()
    finally:
        await runner.aclose()
    assert result.ok and len(result.records) == 3
    assert result.targets["dead"].down and result.targets["sim"].done == 3
    assert all((spec.out_dir / name).exists() for r in result.records for name in r.files)
