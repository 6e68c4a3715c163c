"""Models the server already has under another name are used, not downloaded; the corrected
workflow is saved and accepted. Also: ``--comfy-dir`` checked against the server's folders."""

from __future__ import annotations

import json

import pytest

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.fix.flow import FixFlow, FixOptions
from pistachio_tui.fix.ondisk import match_on_server, rename_model
from pistachio_tui.fix.server_folders import comfy_dir_problem, model_folders
from pistachio_tui.sim.server import SimServer
from pistachio_tui.workflow.load import load_workflow
from tests.fix.file_server import FileServer
from tests.fix.workflows import CHECKPOINT_ONLY_NODES, fix_workflow


def _options(tmp_path, **kw):
    return FixOptions(**{"poll_interval": 0.02, "hf_search": False, "state_dir": tmp_path / "state", "yes": True,
                         **kw})


@pytest.mark.parametrize(("wanted", "server", "expected"), [
    ("SDXL\\model.safetensors", ["model.safetensors"], "model.safetensors"),
    ("sdxl/model.safetensors", ["SDXL/model.safetensors", "other.safetensors"], "SDXL/model.safetensors"),
    ("SDXL\\model.safetensors", ["SDXL/model.safetensors"], "SDXL/model.safetensors"),
    ("Model.safetensors", ["a/model.safetensors"], "a/model.safetensors"),
    ("x/model.safetensors", ["b/model.safetensors", "x/model.safetensors"], "x/model.safetensors"),
])
def test_match_by_file_name_ignoring_separators_and_subfolders(wanted, server, expected):
    found = match_on_server(wanted, server)
    assert found is not None and found.server_name == expected


def test_no_match_for_another_file():
    assert match_on_server("SDXL\\model.safetensors", ["model2.safetensors", "model.ckpt"]) is None


def _file_workflow(tmp_path, name: str, **kw) -> tuple:
    nodes = [(1, "CheckpointLoaderSimple", [name], {}, ["MODEL", "CLIP", "VAE"]), *CHECKPOINT_ONLY_NODES[1:]]
    data = fix_workflow("http://127.0.0.1:9", nodes, [(name, "checkpoints")])
    path = tmp_path / "downloaded.json"
    path.write_text(json.dumps(data))
    return load_workflow(path), path


@pytest.mark.parametrize(("wanted", "on_server"), [
    ("SDXL\\fixflow_ckpt.safetensors", "fixflow_ckpt.safetensors"),
    ("sdxl/fixflow_ckpt.safetensors", "SDXL/fixflow_ckpt.safetensors"),
])
async def test_file_on_the_server_is_used_and_the_corrected_workflow_accepted(tmp_path, wanted, on_server):
    files = FileServer(files={})
    await files.start()
    sim = SimServer(step_delay=0.001, manager=True, models={"checkpoints": [on_server]})
    await sim.start()
    workflow, path = _file_workflow(tmp_path, wanted)
    events = []
    try:
        async with ComfyClient(sim.url) as client:
            outcome = await FixFlow(client, workflow, _options(tmp_path, comfy_dir=tmp_path),
                                    emit=events.append).run()
            saved = tmp_path / "downloaded.fixed.json"
            # The saved copy, loaded afresh, is accepted by the server as it is.
            again = await FixFlow(client, load_workflow(saved), _options(tmp_path)).run()
    finally:
        await sim.stop()
        await files.stop()
    assert outcome.accepted, outcome.remaining
    assert outcome.saved == saved and outcome.renamed == {wanted: on_server}
    assert any(f"using checkpoints/{on_server} already on the server" in e.message for e in events)
    assert not any(e.step == "download" for e in events) and not files.requests
    data = json.loads(saved.read_text())
    assert data["nodes"][0]["widgets_values"] == [on_server]
    assert data["models"][0]["name"] == on_server
    assert json.loads(path.read_text())["nodes"][0]["widgets_values"] == [wanted]
    assert again.accepted and not again.renamed and again.saved is None


async def test_output_option_names_the_corrected_copy(tmp_path):
    sim = SimServer(step_delay=0.001, models={"checkpoints": ["fixflow_ckpt.safetensors"]})
    await sim.start()
    workflow, _ = _file_workflow(tmp_path, "SDXL\\fixflow_ckpt.safetensors")
    target = tmp_path / "out" / "mine.json"
    try:
        async with ComfyClient(sim.url) as client:
            outcome = await FixFlow(client, workflow, _options(tmp_path, output=target, queue=False)).run()
    finally:
        await sim.stop()
    assert outcome.saved == target and target.is_file()
    assert not (tmp_path / "downloaded.fixed.json").exists()


def test_rename_reaches_subgraphs_and_api_prompts():
    ui = {"nodes": [{"id": 1, "type": "X", "widgets_values": ["a\\b.safetensors", 3]}],
          "definitions": {"subgraphs": [{"id": "s", "nodes": [
              {"id": 2, "type": "LoraLoader", "widgets_values": ["a\\b.safetensors", 1.0, 1.0],
               "properties": {"models": [{"name": "a\\b.safetensors", "directory": "loras"}]}}]}]},
          "links": []}
    workflow = load_workflow(json.dumps(ui).encode(), "sub.json")
    assert rename_model(workflow, "a\\b.safetensors", "b.safetensors") == 3
    assert [r.name for r in workflow.model_refs] == ["b.safetensors"]
    api = load_workflow(json.dumps({"1": {"class_type": "LoraLoader", "inputs": {"lora_name": "a\\b.safetensors"}}
                                    }).encode(), "api.json")
    assert rename_model(api, "a\\b.safetensors", "b.safetensors") == 1
    assert api.api["1"]["inputs"]["lora_name"] == "b.safetensors"


async def test_comfy_dir_the_server_does_not_read_is_refused_before_downloading(tmp_path):
    files = FileServer(files={"fixflow_ckpt.safetensors": b"x" * 1000})
    await files.start()
    served = tmp_path / "server" / "models"
    sim = SimServer(step_delay=0.001, models_dir=served)
    await sim.start()
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "models").mkdir(parents=True)
    data = fix_workflow(files.url, CHECKPOINT_ONLY_NODES, [("fixflow_ckpt.safetensors", "checkpoints")])
    workflow = load_workflow(json.dumps(data).encode(), "w.json")
    try:
        async with ComfyClient(sim.url) as client:
            folders = await model_folders(client)
            outcome = await FixFlow(client, workflow, _options(tmp_path, comfy_dir=elsewhere)).run()
    finally:
        await sim.stop()
        await files.stop()
    assert folders is not None and folders["checkpoints"] == [str(served / "checkpoints")]
    assert not outcome.accepted and not files.requests
    [problem] = [r for r in outcome.remaining if "invisible" in r]
    assert str(served / "checkpoints") in problem and str(elsewhere / "models" / "checkpoints") in problem
    assert comfy_dir_problem(served.parent, "checkpoints", folders, sim.url) is None
