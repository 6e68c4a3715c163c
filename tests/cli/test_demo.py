"""The demo's simulator thread and the prompt it keeps running."""

import asyncio
import time

from pistachio_tui.cli.demo_commands import SimThread, demo_prompt, keep_busy
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
