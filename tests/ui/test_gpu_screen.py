"""The GPU screen in the app: local GPUs through (fake) NVML, the no-driver notice, the sessions' servers."""

from __future__ import annotations

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.gpu.source import Level
from pistachio_tui.ui.gpu.screen import GpuScreen
from pistachio_tui.ui.gpu.view import GpuView
from tests.gpu.fake_nvml import GIB, NOT_SUPPORTED, FakeGpu, FakeNvml
from tests.ui_views.harness import screen_text

from .helpers import fresh_prompt, make_app, until


async def test_local_gpus_through_nvml_with_unsupported_fields(tmp_path, monkeypatch):
    nvml = FakeNvml([FakeGpu("NVIDIA GeForce RTX 4090", memory_used=[20 * GIB, 23.5 * GIB], power_mw=NOT_SUPPORTED),
                     FakeGpu("NVIDIA A100 80GB PCIe", memory_total=80 * GIB, fan=NOT_SUPPORTED)])
    monkeypatch.setattr(GpuScreen, "NVML", nvml)
    app = make_app(tmp_path)
    app.settings.gpu_interval = 0.02
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        view = app.screen.query_one(GpuView)
        await until(pilot, lambda: view.samples >= 3)
        await pilot.pause()
        assert view.snapshot.get("local:0").level is Level.CRITICAL
        text = screen_text(app)
        assert "NVIDIA GeForce RTX 4090 (#0)" in text and "23.5G/24.0G" in text
        assert "power: not reported by this board" in text
    assert nvml.shutdowns == 1, "NVML is shut down when the app closes"


async def test_no_driver_notice_beside_the_cpu_simulators_ram(tmp_path, sim):
    app = make_app(tmp_path, ("sim", sim.url))
    app.settings.gpu_interval = 0.05
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        view = app.screen.query_one(GpuView)
        await until(pilot, lambda: view.chosen == "server:sim:0")
        await until(pilot, lambda: "No NVIDIA driver found on this machine" in screen_text(app))
        # The simulator answers as a CPU-only ComfyUI: its device memory is the machine's RAM.
        text = screen_text(app)
        assert "RAM " in text and "VRAM" not in text


async def test_the_gpu_screen_uses_the_sessions_clients_and_running_prompt(tmp_path, monkeypatch):
    from pistachio_tui.sim.server import SimServer

    made: list[ComfyClient] = []
    real_init = ComfyClient.__init__

    def init(self, *args, **kwargs):
        made.append(self)
        real_init(self, *args, **kwargs)

    slow = SimServer(step_delay=0.1)
    await slow.start()
    try:
        app = make_app(tmp_path, ("slow", slow.url))
        app.settings.gpu_interval = 0.05
        async with app.run_test(size=(100, 30)) as pilot:
            session = app.manager.active
            await until(pilot, lambda: session.state == "connected")
            monkeypatch.setattr(ComfyClient, "__init__", init)
            await pilot.press("4")
            state = await session.submit(fresh_prompt(slow, 5))
            await until(pilot, lambda: f"running {state.prompt_id[:8]}" in screen_text(app))
            assert not made, "the GPU screen opens no connection of its own"
            await pilot.press("f")
            await until(pilot, lambda: any("freed" in str(n.message) for n in app._notifications))
            await session.interrupt()
    finally:
        await slow.stop()


async def test_servers_added_and_removed_follow_into_the_gpu_screen(tmp_path, sim):
    from pistachio_tui.config import ServerConfig

    app = make_app(tmp_path, ("sim", sim.url))
    app.settings.gpu_interval = 0.05
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        view = app.screen.query_one(GpuView)
        await until(pilot, lambda: view.chosen == "server:sim:0")
        app.add_server(ServerConfig("other", sim.url))
        await until(pilot, lambda: "server:other:0" in view.row_keys)
        await app.manager.remove("sim")
        await until(pilot, lambda: not any(key.startswith("server:sim:") for key in view.row_keys))


async def test_dashboard_vram_is_on_the_fixed_scale(tmp_path, sim):
    from pistachio_tui.ui.gpu.graph import HistoryGraph

    app = make_app(tmp_path, ("sim", sim.url), dashboard=True)
    async with app.run_test(size=(80, 24)) as pilot:
        session = app.manager.active
        await until(pilot, lambda: len(session.vram_used) >= 1)
        session.vram_used.clear()
        session.vram_used.extend([0.05, 0.06])
        app.screen.refresh_view(None)
        await pilot.pause()
        graph = app.screen.query_one("#dash-vram", HistoryGraph)
        assert graph.data.values[:2] == (5.0, 6.0) and graph.data.top == 100.0
        plot = [row.split("┤")[1] for row in str(graph.render()).splitlines()[1:-1]]
        assert len(plot) > 2 and not "".join(plot[:-1]).strip(), "5 % -> 6 % is a sliver, not a full bar"
        assert "█" not in plot[-1] and plot[-1].strip()
