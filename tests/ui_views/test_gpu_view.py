"""GPU view: fake local GPUs, no GPU at all, the simulator's /system_stats, free memory, a dead server."""

from __future__ import annotations

import pytest

from pistachio_tui.comfy.types import QueueState, SystemStats
from pistachio_tui.config import ServerConfig, Settings
from pistachio_tui.sim.catalog import recorded_system_stats
from pistachio_tui.ui.gpu.view import GpuReading, GpuView, NoGpu
from tests.ui_views.harness import ViewApp, screen_text, until

GIB = 1024 ** 3


class FakeGpus:
    """Two local GPUs: a busy RTX 4090 near its limit and an idle A100; VRAM of the 4090 rises per sample."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> list[GpuReading]:
        self.calls += 1
        used = int(min(20 + self.calls, 23.5) * GIB)
        return [
            GpuReading("local:0", "NVIDIA GeForce RTX 4090 (#0)", used, 24 * GIB, 99.0, 71.0, 402.0, 450.0),
            GpuReading("local:1", "NVIDIA A100 80GB PCIe (#1)", 2 * GIB, 80 * GIB, 0.0, 35.0, 60.0, 300.0),
        ]


def no_nvml() -> list[GpuReading]:
    raise NoGpu("No NVIDIA driver on this machine: libnvidia-ml.so.1 is not installed")


def gpu_app(settings: Settings, **kwargs) -> ViewApp:
    return ViewApp(lambda: GpuView(settings, **kwargs))


async def test_local_gpus_get_panels_with_peak_and_warning():
    gpus = FakeGpus()
    app = gpu_app(Settings(gpu_interval=0.01), local_source=gpus)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(GpuView)
        await until(pilot, lambda: gpus.calls >= 6, "a few samples")
        hot, idle = view.panels["local:0"], view.panels["local:1"]
        assert hot.has_class("-critical") and not idle.has_class("-warn")
        assert view.history["local:0"].peak == int(23.5 * GIB)
        assert len(view.history["local:0"].used) <= 120
        text = screen_text(app)
        assert "NVIDIA GeForce RTX 4090 (#0)" in text and "VRAM 23.5G/24.0G (98%)" in text
        assert "402/450W" in text and "peak 23.5G" in text


async def test_no_nvidia_gpu_is_said_plainly():
    app = gpu_app(Settings(), local_source=no_nvml)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "No NVIDIA driver on this machine" in screen_text(app), "the notice")
        assert "libnvidia-ml.so.1" in screen_text(app)


async def test_server_vram_from_the_simulator_and_free_memory(sim):
    settings = Settings(servers=[ServerConfig("sim", sim.url)], gpu_interval=0.05)
    app = gpu_app(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(GpuView)
        await until(pilot, lambda: any(k.startswith("sim:") for k in view.panels), "the simulator's device")
        panel = next(p for k, p in view.panels.items() if k.startswith("sim:"))
        device = SystemStats.from_wire(recorded_system_stats()).devices[0]
        assert view.history[panel.key].peak == device.vram_total - device.vram_free
        panel.focus()
        await pilot.press("f")
        await until(pilot, lambda: "freed" in str(view.status.render()), "the free confirmation")


async def test_unreachable_server_is_shown_on_its_panel():
    settings = Settings(servers=[ServerConfig("gone", "http://127.0.0.1:9")], gpu_interval=5.0)
    app = gpu_app(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(GpuView)
        await until(pilot, lambda: view.panels["gone"].has_class("-down"), "the error")
        assert "Cannot reach ComfyUI at http://127.0.0.1:9" in screen_text(app)


class FixedComfy:
    """Answers /system_stats with the recorded server and an empty queue."""

    def __init__(self, server: ServerConfig) -> None:
        self.base_url = server.url

    async def system_stats(self) -> SystemStats:
        return SystemStats.from_wire(recorded_system_stats())

    async def queue(self) -> QueueState:
        return QueueState([], [])

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_gpu_snapshot(snap_compare, size):
    gpus = FakeGpus()
    settings = Settings(servers=[ServerConfig("studio", "http://studio.lan:8188")], gpu_interval=3600)
    app = gpu_app(settings, local_source=gpus, client_factory=FixedComfy)

    async def sampled(pilot):
        view = pilot.app.query_one(GpuView)
        await until(pilot, lambda: gpus.calls >= 1 and any(k.startswith("studio:") for k in view.panels),
                    "the first samples")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=sampled)
