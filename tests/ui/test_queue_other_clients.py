"""The Queue screen shows a prompt another client queued running, then finished with its outputs;
live previews are drawn when asked for."""

from __future__ import annotations

import httpx
from textual.widgets import DataTable, Static

from pistachio_tui.comfy.session import CONNECTED
from pistachio_tui.sim.server import SimServer
from pistachio_tui.ui.widgets.output_preview import OutputPreview
from tests.contract.prompts import slow_prompt

from .helpers import make_app, until


async def test_a_curl_prompt_shows_running_then_in_history_with_outputs(tmp_path):
    sim = SimServer(node_delay=0.3)
    await sim.start()
    try:
        app = make_app(tmp_path, ("sim", sim.url))
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.manager.active.state == CONNECTED)
            await pilot.press("3")
            async with httpx.AsyncClient(base_url=sim.url) as curl:
                response = await curl.post("/prompt", json={"prompt": slow_prompt(4), "client_id": "curl"})
            prompt_id = response.json()["prompt_id"]
            title = app.screen.query_one("#running-title", Static)
            await until(pilot, lambda: prompt_id[:8] in str(title.render()))
            history = app.screen.query_one("#history", DataTable)
            await until(pilot, lambda: history.row_count == 1, timeout=20)
            assert "Idle" in str(title.render()) or prompt_id[:8] not in str(title.render())
            entry = app.manager.active.history[prompt_id]
            assert entry.outcome == "success" and entry.outputs
            state = app.manager.active.tracker.get(prompt_id)
            assert state.status == "success" and state.outputs == entry.outputs and not state.ours
    finally:
        await sim.stop()


async def test_live_previews_are_drawn_when_switched_on(tmp_path):
    sim = SimServer(step_delay=0.05, preview_every=1)
    await sim.start()
    try:
        app = make_app(tmp_path, ("sim", sim.url))
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.manager.active.state == CONNECTED)
            await pilot.press("3", "p")
            session = app.manager.active
            assert session.previews is True
            prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1,
                                                                    "color": 77}},
                      "2": {"class_type": "SlowSteps", "inputs": {"steps": 40, "delay": 0.0, "image": ["1", 0]}},
                      "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "pv", "images": ["2", 0]}}}
            await session.submit(prompt)
            caption = app.screen.query_one(OutputPreview).query_one(".caption", Static)
            await until(pilot, lambda: "live preview" in str(caption.render()))
            assert "JPEG" in str(caption.render())
    finally:
        await sim.stop()
