"""The demo's broken workflow: two missing packs, a checkpoint under a Windows name and two
missing models, fixed on the demo's simulated server and its simulated Manager."""

from __future__ import annotations

import asyncio

from pistachio_tui.cli.demo_commands import demo_session
from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.fix.flow import FixFlow, FixOptions
from pistachio_tui.sim.demo_fix import CHECKPOINT_ASKED, CHECKPOINT_ON_SERVER, HOSTED_MODELS, model_bytes
from pistachio_tui.workflow.load import load_workflow


def test_demo_broken_workflow_is_fixed_end_to_end(tmp_path):
    with demo_session(step_delay=0.001, autorun=False, train_step_seconds=0.01) as demo:
        demo.sim.server.reboot_downtime = 0.05
        assert demo.broken_workflow.parent in demo.settings.workflow_dirs
        assert "SIMULATED" in demo.broken_workflow.name

        async def fix():
            events = []
            async with ComfyClient(demo.sim.url) as client:
                options = FixOptions(comfy_dir=demo.comfy_dir, yes=True, hf_search=False, poll_interval=0.02,
                                     state_dir=tmp_path / "state")
                flow = FixFlow(client, load_workflow(demo.broken_workflow), options, emit=events.append)
                return await flow.run(), events

        outcome, events = asyncio.run(fix())
        for name, folder, size in HOSTED_MODELS:
            assert (demo.comfy_dir / "models" / folder / name).read_bytes() == model_bytes(name, size)
    assert outcome.accepted, outcome.remaining
    assert outcome.renamed == {CHECKPOINT_ASKED: CHECKPOINT_ON_SERVER}
    installed = [e.message for e in events if e.step == "install" and e.state == "ok"]
    assert installed == ["installed comfyui_ultimatesdupscale@1.3.2", "installed comfyui-videohelpersuite@1.7.4"]
    assert ("restart", "ok") in [(e.step, e.state) for e in events]
