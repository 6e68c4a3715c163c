"""Packs by the identity the nodes carry (``cnr_id`` / ``aux_id`` / ``ver``) before any map."""

from __future__ import annotations

import json

import pytest

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.fix.flow import FixFlow, FixOptions
from pistachio_tui.fix.importfail import ServerPaths, manual_install_commands
from pistachio_tui.fix.manager import install_specs
from pistachio_tui.fix.nodedb import NodeDB
from pistachio_tui.sim.server import SimServer
from pistachio_tui.workflow.deps import PackRef
from pistachio_tui.workflow.load import load_workflow
from tests.fix.workflows import FIX_NODES, fix_workflow


def _with_properties(properties: dict[int, dict]) -> dict:
    data = fix_workflow("http://127.0.0.1:9", FIX_NODES, [])
    for node in data["nodes"]:
        node["properties"].update(properties.get(node["id"], {}))
    return data


def test_identity_resolves_through_the_offline_lists_and_pins_the_version():
    pack = NodeDB.from_manager_package().pack_for_identity(PackRef("comfyui_ultimatesdupscale", None, "1.3.2"))
    assert pack.url == "https://github.com/ssitu/ComfyUI_UltimateSDUpscale"
    specs = install_specs(pack)
    assert [(s.id, s.selected_version) for s in specs][:2] == [
        ("comfyui_ultimatesdupscale", "1.3.2"), ("comfyui_ultimatesdupscale", "latest")]


def test_a_pack_newer_than_the_lists_is_still_installable():
    db = NodeDB({})
    registry = db.pack_for_identity(PackRef("brand-new-pack", None, "0.1.0"))
    assert [(s.id, s.selected_version) for s in install_specs(registry)] == [
        ("brand-new-pack", "0.1.0"), ("brand-new-pack", "latest")]
    assert manual_install_commands(registry, ServerPaths())[-1] == "comfy node install brand-new-pack@0.1.0"
    git = db.pack_for_identity(PackRef(None, "someone/ComfyUI-New", "0123abc"))
    assert git.url == "https://github.com/someone/ComfyUI-New"
    assert install_specs(git)[-1].repository == git.url


@pytest.mark.parametrize(("ver", "queued"), [
    ("1.3.2", ["comfyui_ultimatesdupscale@1.3.2"]),
    # A version the registry does not have: the pinned install fails, the latest one is taken.
    ("9.9.9", ["comfyui_ultimatesdupscale@9.9.9", "comfyui_ultimatesdupscale@latest"]),
])
async def test_flow_installs_the_version_the_node_names(tmp_path, ver, queued):
    sim = SimServer(step_delay=0.001, manager=True, models_dir=tmp_path / "models", reboot_downtime=0.05)
    await sim.start()
    data = _with_properties({9: {"cnr_id": "comfyui_ultimatesdupscale", "ver": ver}})
    events = []
    try:
        async with ComfyClient(sim.url) as client:
            flow = FixFlow(client, load_workflow(json.dumps(data).encode(), "w.json"),
                           FixOptions(poll_interval=0.02, hf_search=False, queue=False, state_dir=tmp_path / "s"),
                           emit=events.append)
            await flow.diagnose()
            await flow.fix_nodes(["UltimateSDUpscale"])
            installed = await flow.manager.installed()
    finally:
        await sim.stop()
    assert any("the node names comfyui_ultimatesdupscale@" + ver in e.message for e in events)
    starts = [e.message.removeprefix("Queueing ") for e in events if e.step == "install" and e.state == "start"]
    assert starts == queued
    assert installed["comfyui_ultimatesdupscale"]["ver"] == "1.3.2"


async def test_a_lookup_that_cannot_run_says_why(tmp_path, monkeypatch):
    from pistachio_tui.fix import nodedb

    monkeypatch.setattr(nodedb, "manager_data_dir", lambda: None)
    nodedb._offline_db.cache_clear()
    nodedb._offline_details.cache_clear()
    sim = SimServer(step_delay=0.001)
    await sim.start()
    prompt = {"1": {"class_type": "UltimateSDUpscale", "inputs": {}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    try:
        async with ComfyClient(sim.url) as client:
            outcome = await FixFlow(client, load_workflow(json.dumps(prompt).encode(), "api.json"),
                                    FixOptions(hf_search=False, queue=False, state_dir=tmp_path / "s")).run()
    finally:
        await sim.stop()
        nodedb._offline_db.cache_clear()
        nodedb._offline_details.cache_clear()
    [line] = [r for r in outcome.remaining if "UltimateSDUpscale" in r]
    assert line.startswith("Cannot look up which pack provides node 'UltimateSDUpscale'")
    assert "comfyui-manager" in line and "No known pack" not in line


async def test_a_missing_core_node_asks_for_a_newer_comfyui(tmp_path):
    data = _with_properties({9: {"cnr_id": "comfy-core", "ver": "0.9.2"}})
    sim = SimServer(step_delay=0.001, manager=True)
    await sim.start()
    try:
        async with ComfyClient(sim.url) as client:
            flow = FixFlow(client, load_workflow(json.dumps(data).encode(), "w.json"),
                           FixOptions(hf_search=False, queue=False, state_dir=tmp_path / "s"))
            await flow.diagnose()
            await flow.fix_nodes(["UltimateSDUpscale"])
    finally:
        await sim.stop()
    assert flow.outcome.remaining == [
        "Node 'UltimateSDUpscale' is part of ComfyUI itself (the workflow was saved with ComfyUI 0.9.2): "
        "update ComfyUI on the server."]
