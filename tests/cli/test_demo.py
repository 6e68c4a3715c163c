"""The demo's simulator thread, the prompt it keeps running, the models it stocks."""

import asyncio
import time

from pistachio_tui.cli.demo_commands import SimThread, demo_prompt, keep_busy, stock_bundled_models
from pistachio_tui.comfy.client import ComfyClient


def test_sim_thread_keeps_a_prompt_running():
    sim = SimThread(step_delay=0.01)
    url = sim.start()
    try:
        prompt = demo_prompt(sim.server.object_info())
        assert {n["class_type"] for n in prompt.values()} >= {"KSampler", "SaveImage"}
        busy = sim.submit(keep_busy(url, prompt, idle_pause=0.05))

        async def history_size():
            async with ComfyClient(url) as client:
                return len(await client.history())

        deadline = time.monotonic() + 20
        while asyncio.run(history_size()) < 2:
            assert time.monotonic() < deadline, "the demo did not keep the simulator busy"
            time.sleep(0.05)
        busy.cancel()
    finally:
        sim.stop()


async def test_demo_server_has_every_model_the_bundled_workflows_use(sim):
    from pistachio_tui.comfy.deps import analyse
    from pistachio_tui.comfy.workflow import load_workflow
    from pistachio_tui.ui.workflow_sources import bundled_dir, workflow_files

    stocked = stock_bundled_models(sim)
    assert "checkpoints/sd_xl_base_1.0.safetensors" in stocked
    files = workflow_files(bundled_dir())
    assert len(files) >= 5
    for path in files:
        needs = analyse(load_workflow(path), sim.object_info(), sim.models())
        assert needs.missing_models == [], path.name
