"""The fix flow against the simulator (with its Manager emulation) and a local file server."""

from __future__ import annotations

import json

import pytest

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.fix.flow import FixFlow, FixOptions
from pistachio_tui.fix.models_search import ModelCandidate
from pistachio_tui.remedies import Need
from pistachio_tui.sim.server import SimServer
from pistachio_tui.workflow.load import load_workflow
from tests.fix.file_server import FileServer, fake_model
from tests.fix.workflows import CHECKPOINT_ONLY_NODES, MODELS, fix_workflow

SIZE = 150_000


@pytest.fixture
async def files():
    server = FileServer(files={name: fake_model(SIZE) for name, _ in MODELS})
    await server.start()
    yield server
    await server.stop()


async def _sim(tmp_path, manager: bool | str = True):
    sim = SimServer(step_delay=0.001, manager=manager, models_dir=tmp_path / "models", reboot_downtime=0.05)
    await sim.start()
    return sim


def _api_workflow(prompt: dict):
    return load_workflow(json.dumps(prompt).encode(), "api.json")


def _options(tmp_path, **kw):
    base = dict(poll_interval=0.02, hf_search=False, state_dir=tmp_path / "state")
    base.update(kw)
    return FixOptions(**base)


async def _fix(tmp_path, workflow, *, manager: bool | str = True, security_level: str | None = None, chooser=None,
               **options):
    """One fix on a fresh simulator: the outcome, and every event the flow emitted."""
    sim = await _sim(tmp_path, manager=manager)
    if security_level is not None:
        sim.manager.security_level = security_level
    events: list = []
    try:
        async with ComfyClient(sim.url) as client:
            outcome = await FixFlow(client, workflow, _options(tmp_path, **options), emit=events.append,
                                    chooser=chooser).run()
    finally:
        await sim.stop()
    return outcome, events


BROKEN = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    "2": {"class_type": "BrokenPackNode", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
}

USDU = {
    "1": {"class_type": "UltimateSDUpscale", "inputs": {}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
}


@pytest.mark.parametrize("version", ["V3.39.2", "V3.41", "V4.0.4", "V4.2.1"])
async def test_two_packs_three_models_to_accepted(tmp_path, files, version):
    sim = await _sim(tmp_path, manager=version)
    events = []
    try:
        workflow = load_workflow(json.dumps(fix_workflow(files.url)).encode(), "fix.json")
        async with ComfyClient(sim.url) as client:
            flow = FixFlow(client, workflow, _options(tmp_path, comfy_dir=tmp_path, yes=True), emit=events.append)
            outcome = await flow.run()
    finally:
        await sim.stop()
    assert outcome.accepted and outcome.prompt_id and not outcome.remaining
    for name, folder in MODELS:
        assert (tmp_path / "models" / folder / name).stat().st_size == SIZE
    steps = [(e.step, e.state) for e in events]
    assert ("restart", "ok") in steps and steps[-1] == ("done", "ok")
    assert [e.item for e in events if e.step == "install" and e.state == "ok"] == [
        "UltimateSDUpscale", "ComfyUI-VideoHelperSuite"]
    assert any(e.message.startswith(f"ComfyUI-Manager {version} (") for e in events)


async def test_import_failure_reported_with_pip_command(tmp_path):
    outcome, events = await _fix(tmp_path, _api_workflow(BROKEN), yes=True)
    assert not outcome.accepted
    [failure] = outcome.import_failures
    assert failure.pack == "ComfyUI-BrokenPack" and failure.missing_module == "definitely_missing_dependency_xyz"
    assert any(c.endswith("-m pip install definitely-missing-dependency-xyz") for c in outcome.commands)


async def test_without_manager_gives_manual_commands(tmp_path):
    outcome, events = await _fix(tmp_path, _api_workflow(USDU), manager=False)
    assert not outcome.accepted
    clone, requirements = outcome.commands[:2]
    assert clone.startswith("git clone https://github.com/ssitu/ComfyUI_UltimateSDUpscale ")
    assert clone.endswith("custom_nodes/ComfyUI_UltimateSDUpscale")
    assert "-m pip install -r " in requirements
    assert any("Install UltimateSDUpscale by hand" in r for r in outcome.remaining)
    assert any(e.message.startswith("No ComfyUI-Manager on this server") for e in events)


async def test_unknown_node_class_is_actionable(tmp_path):
    prompt = {"1": {"class_type": "NoPackProvidesThis_9000", "inputs": {}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    outcome, events = await _fix(tmp_path, _api_workflow(prompt))
    assert not outcome.accepted
    assert any("No known pack provides node 'NoPackProvidesThis_9000'" in r for r in outcome.remaining)


async def test_unknown_model_is_actionable(tmp_path):
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "nowhere_to_be_found.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["8", 0]}},
    }
    outcome, events = await _fix(tmp_path, _api_workflow(prompt), yes=True)
    assert not outcome.accepted
    assert any("nowhere_to_be_found.safetensors" in r and "models/checkpoints/" in r for r in outcome.remaining)


async def test_model_through_manager_when_no_local_folder(tmp_path, files):
    workflow = load_workflow(json.dumps(
        fix_workflow(files.url, CHECKPOINT_ONLY_NODES, MODELS[:1])).encode(), "ckpt.json")
    outcome, events = await _fix(tmp_path, workflow, yes=True)
    assert outcome.accepted, outcome.remaining
    assert (tmp_path / "models" / "checkpoints" / "fixflow_ckpt.safetensors").is_file()


async def test_without_yes_nothing_is_downloaded(tmp_path, files):
    workflow = load_workflow(json.dumps(
        fix_workflow(files.url, CHECKPOINT_ONLY_NODES, MODELS[:1])).encode(), "ckpt.json")
    outcome, events = await _fix(tmp_path, workflow, comfy_dir=tmp_path)
    assert not outcome.accepted and not files.requests
    assert outcome.needs == [Need.MODEL_CHOICE] and not any("--" in r for r in outcome.remaining)


async def test_pack_the_manager_cannot_resolve_gets_manual_commands(tmp_path):
    prompt = {"1": {"class_type": "IPAdapterModelLoader", "inputs": {}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    outcome, events = await _fix(tmp_path, _api_workflow(prompt))
    assert not outcome.accepted
    failures = [e.message for e in events if e.step == "install" and e.state == "failed"]
    assert any("Cannot resolve install target" in m for m in failures)
    assert any(c.startswith("git clone https://github.com/cubiq/ComfyUI_IPAdapter_plus ") for c in outcome.commands)
    assert not any(e.step == "restart" for e in events)


async def test_chooser_decides_and_choice_is_remembered(tmp_path, files):
    sim = await _sim(tmp_path)
    workflow = load_workflow(json.dumps(
        fix_workflow(files.url, CHECKPOINT_ONLY_NODES, MODELS[:1])).encode(), "ckpt.json")
    offered = []

    async def chooser(need, candidates):
        offered.append((need.name, [c.source for c in candidates]))
        return candidates[0]

    try:
        async with ComfyClient(sim.url) as client:
            flow = FixFlow(client, workflow, _options(tmp_path, comfy_dir=tmp_path), chooser=chooser)
            outcome = await flow.run()
    finally:
        await sim.stop()
    assert outcome.accepted
    assert offered == [("fixflow_ckpt.safetensors", ["workflow"])]
    [state_file] = (tmp_path / "state" / "fix").glob("*.json")
    assert json.loads(state_file.read_text())["models"]["fixflow_ckpt.safetensors"]["url"].startswith(files.url)


async def test_a_forbidding_3x_manager_is_asked_once_and_explained(tmp_path):
    outcome, events = await _fix(tmp_path, _api_workflow(USDU), manager="V3.39.2", security_level="strong")
    refusals = [e.message for e in events if e.step == "install" and e.state == "failed" and "refused" in e.message]
    assert len(refusals) == 1 and "security_level" in refusals[0] and "POST /manager/queue/install (403)" in refusals[0]
    assert any(c.startswith("git clone https://github.com/ssitu/ComfyUI_UltimateSDUpscale ") for c in outcome.commands)
    assert not any(e.step == "restart" for e in events)


async def test_a_good_branch_does_not_end_the_fix_before_the_other_is_fixed(tmp_path, files):
    # ComfyUI accepts a prompt once one output validates and runs only that branch.
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "good"}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "fixflow_ckpt.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "needs-model", "images": ["8", 0]}},
    }
    sim = await _sim(tmp_path)
    events = []

    async def chooser(need, _candidates):
        return ModelCandidate(need.name, "checkpoints", f"{files.url}/{need.name}", "workflow")

    try:
        async with ComfyClient(sim.url) as client:
            flow = FixFlow(client, _api_workflow(prompt), _options(tmp_path, comfy_dir=tmp_path),
                           emit=events.append, chooser=chooser)
            outcome = await flow.run()
    finally:
        await sim.stop()
    assert outcome.accepted, outcome.remaining
    assert (tmp_path / "models" / "checkpoints" / "fixflow_ckpt.safetensors").stat().st_size == SIZE
    assert [e.state for e in events if e.step == "validate"] == ["start"]


async def test_a_4x_manager_refusing_by_policy_is_asked_once(tmp_path):
    outcome, events = await _fix(tmp_path, _api_workflow(USDU), manager="V4.0.4", security_level="strong")
    queued = [e.message for e in events if e.step == "install" and e.state == "start"]
    assert queued == ["Queueing comfyui_ultimatesdupscale@latest"]
    assert any("security_level = normal" in e.message for e in events if e.state == "failed")
    assert not outcome.accepted and outcome.commands
