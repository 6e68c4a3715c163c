"""A serverless-only batch converts a UI workflow with a node list the user gave, never a guessed one."""

from __future__ import annotations

import json

import pytest

from pistachio_tui.cli import exit_codes
from pistachio_tui.fleet.build import NodeListNeeded, prepare_batch
from pistachio_tui.fleet.spec import BatchSpec, EndpointSpec
from pistachio_tui.remedies import Need
from pistachio_tui.sim.catalog import recorded_object_info
from tests.fleet.test_batch_cli import SIM_WORKFLOW, run_cli


@pytest.fixture(autouse=True)
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("PISTACHIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_TESTKEY0000")


def ui_workflow_with_a_custom_node(tmp_path):
    graph = json.loads(SIM_WORKFLOW.read_text())
    assert "nodes" in graph, "the sample must be a UI workflow"
    graph["nodes"].append({"id": 999, "type": "MyCustomUpscale", "mode": 0, "inputs": [], "outputs": [],
                           "widgets_values": [2.0]})
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(graph))
    return path


async def test_a_ui_workflow_with_no_node_list_is_refused_with_both_ways_out(tmp_path):
    spec = BatchSpec(workflow=ui_workflow_with_a_custom_node(tmp_path), endpoints=[EndpointSpec("ep")])
    with pytest.raises(NodeListNeeded, match="node list of a ComfyUI server") as info:
        await prepare_batch(spec, [])
    assert info.value.needs is Need.NODE_LIST and "--" not in str(info.value), "each front end says how"


async def test_a_given_node_list_converts_and_keeps_the_custom_node(tmp_path):
    object_info = recorded_object_info()
    object_info["MyCustomUpscale"] = {"input": {"required": {"scale": ["FLOAT", {"default": 2.0}]}},
                                      "output": ["IMAGE"], "output_node": True, "name": "MyCustomUpscale"}
    spec = BatchSpec(workflow=ui_workflow_with_a_custom_node(tmp_path), endpoints=[EndpointSpec("ep")])
    prepared = await prepare_batch(spec, [], object_info=object_info, out_dir=tmp_path / "out")
    assert prepared.base["999"]["class_type"] == "MyCustomUpscale"
    assert prepared.base["999"]["inputs"] == {"scale": 2.0}


async def test_cli_says_how_to_give_the_node_list(tmp_path, capsys):
    wf = ui_workflow_with_a_custom_node(tmp_path)
    code = await run_cli(["batch", str(wf), "--endpoint", "ep1", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == exit_codes.USAGE and "--server URL" in err and "--object-info FILE" in err
    broken = tmp_path / "oi.json"
    broken.write_text("[1, 2]")
    code = await run_cli(["batch", str(wf), "--endpoint", "ep1", "--object-info", str(broken), "-o", str(tmp_path / "o")])
    assert code == exit_codes.USAGE and "not a node list" in capsys.readouterr().err
