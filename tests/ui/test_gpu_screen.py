"""The GPU screen in the app: local GPUs through (fake) NVML, the no-driver notice, the simulator's VRAM."""

from __future__ import annotations

import os
from pathlib import Path

from pistachio_tui.ui.gpu.screen import GpuScreen
from pistachio_tui.ui.gpu.view import GpuView
from tests.gpu.fake_nvml import GIB, NOT_SUPPORTED, FakeGpu, FakeNvml
from tests.ui_views.harness import screen_text

from .helpers import fresh_prompt, make_app, until


async def test_local_gpus_through_nvml_with_unsupported_fields(tmp_path, monkeypatch):
    me = os.getpid()
    nvml = FakeNvml([FakeGpu("NVIDIA GeForce RTX 4090", memory_used=[20 * GIB, 23.5 * GIB], power_mw=NOT_SUPPORTED,
                             processes=[(999_999_999, 1 * GIB), (me, 21 * GIB)]),
                     FakeGpu("NVIDIA A100 80GB PCIe", memory_total=80 * GIB, fan=NOT_SUPPORTED)])
    monkeypatch.setattr(GpuScreen, "NVML", nvml)
    app = make_app(tmp_path)
    app.settings.gpu_interval = 0.02
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        view = app.screen.query_one(GpuView)
        await until(pilot, lambda: view.samples >= 3)
        hot, idle = view.panels["local:0"], view.panels["local:1"]
        assert hot.has_class("-critical") and not idle.has_class("-warn")
        text = screen_text(app)
        assert "NVIDIA GeForce RTX 4090 (#0)" in text and "VRAM 23.5G/24.0G (98%)" in text
        assert text.count("/450W") == 1, "no power figure for the board that does not report it"
        my_name = Path(f"/proc/{me}/comm").read_text().strip()
        assert f"processes: {my_name} 21.0G · pid 999999999 1.0G" in text, "biggest first; a hidden name by pid"
    assert nvml.shutdowns == 1, "NVML is shut down when the app closes"


async def test_no_driver_notice_beside_the_simulators_vram(tmp_path, sim):
    app = make_app(tmp_path, ("sim", sim.url))
    app.settings.gpu_interval = 0.05
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        view = app.screen.query_one(GpuView)
        await until(pilot, lambda: any(key.startswith("sim:") for key in view.panels))
        await until(pilot, lambda: "No NVIDIA driver found on this machine" in screen_text(app))
        assert "VRAM " in screen_text(app)


async def test_the_running_prompt_comes_from_the_session(tmp_path, monkeypatch):
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.sim.server import SimServer

    asked, real_queue = [], ComfyClient.queue

    async def queue(self):
        asked.append(self)
        return await real_queue(self)

    monkeypatch.setattr(ComfyClient, "queue", queue)
    slow = SimServer(step_delay=0.1)
    await slow.start()
    try:
        app = make_app(tmp_path, ("slow", slow.url))
        app.settings.gpu_interval = 0.05
        async with app.run_test(size=(100, 30)) as pilot:
            session = app.manager.active
            await until(pilot, lambda: session.state == "connected")
            await pilot.press("4")
            state = await session.submit(fresh_prompt(slow, 5))
            await until(pilot, lambda: f"running {state.prompt_id[:8]}" in screen_text(app))
            gpu_clients = set(app.screen.query_one(GpuView).clients.values())
            assert not gpu_clients & set(asked), "the GPU screen does not poll /queue itself"
            await session.interrupt()
    finally:
        await slow.stop()
