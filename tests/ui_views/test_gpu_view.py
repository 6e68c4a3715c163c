"""GPU view over a GpuHub: fake local GPUs, no GPU at all, the simulator's /system_stats, free memory, a dead server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import DataTable

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.types import SystemStats
from pistachio_tui.gpu.hub import GpuHub
from pistachio_tui.gpu.nvml import NvmlReader
from pistachio_tui.gpu.source import Level
from pistachio_tui.sim.catalog import recorded_system_stats
from pistachio_tui.ui.gpu.graph import HistoryGraph, bars, plot_rows, time_axis
from pistachio_tui.ui.gpu.view import GpuView
from tests.gpu import fake_nvml
from tests.gpu.fake_nvml import GIB, NOT_SUPPORTED, FakeGpu, FakeNvml
from tests.ui_views.harness import ViewApp, screen_text, until


def rising_gpus(**first) -> FakeNvml:
    """A busy RTX 4090 whose VRAM rises to its limit, and an idle A100."""
    return FakeNvml([
        FakeGpu("NVIDIA GeForce RTX 4090", memory_used=[int(g * GIB) for g in (21, 22, 23, 23.5)],
                util_gpu=99, temperature=71, power_mw=402_000, power_limit_mw=450_000, **first),
        FakeGpu("NVIDIA A100 80GB PCIe", memory_total=80 * GIB, memory_used=2 * GIB, util_gpu=0, temperature=35,
                power_mw=60_000, power_limit_mw=300_000),
    ])


class GpuApp(ViewApp):
    def on_gpu_view_free_memory(self, message: GpuView.FreeMemory) -> None:
        self.posted.append(message)


def gpu_app(hub: GpuHub) -> GpuApp:
    return GpuApp(lambda: GpuView(hub))


def local_hub(nvml: FakeNvml, interval: float = 0.01) -> GpuHub:
    hub = GpuHub(interval=interval)
    hub.add_local(NvmlReader(nvml))
    return hub


async def test_local_gpus_in_the_table_with_graphs_peak_and_warning():
    nvml = rising_gpus()
    app = gpu_app(local_hub(nvml))
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(GpuView)
        await until(pilot, lambda: view.samples >= 6, "a few samples")
        hot = view.snapshot.get("local:0")
        assert hot.level is Level.CRITICAL and view.snapshot.get("local:1").level is Level.OK
        assert hot.series["vram"].peak() == int(23.5 * GIB)
        text = screen_text(app)
        assert "NVIDIA GeForce RTX 4090 (#0)" in text and "23.5G/24.0G" in text and "98%" in text
        assert "402/450W" in text and "peak 23.5G (98%)" in text
        # Every graph on its fixed scale, with its y-scale and time axis.
        assert view.query_one("#gpu-graphs").has_class("-critical")
        assert all(view.query_one(f"#gpu-graph-{m}", HistoryGraph).display
                   for m in ("vram", "util", "temperature", "power"))
        assert "100%┤" in text and "450W┤" in text and "100°┤" in text and " now" in text
        # The cursor picks the device whose graphs are shown.
        await pilot.press("down")
        await until(pilot, lambda: view.chosen == "local:1", "the second GPU chosen")
        assert "300W┤" in screen_text(app)


async def test_process_list_names_memory_per_process_biggest_first():
    me = os.getpid()
    nvml = FakeNvml([FakeGpu(processes=[(999_999_999, 1 * GIB), (me, 21 * GIB)], power_mw=NOT_SUPPORTED)])
    app = gpu_app(local_hub(nvml))
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(GpuView)
        await until(pilot, lambda: view.samples >= 2, "two samples")
        table = view.query_one("#gpu-procs", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        my_name = Path(f"/proc/{me}/comm").read_text().strip()
        assert rows == [[str(me), my_name, "21.0G"], ["999999999", "(hidden)", "1.0G"]]
        assert not view.query_one("#gpu-graph-power").display, "no power graph for a board without the figure"
        assert "power: not reported by this board" in screen_text(app)


async def test_no_nvidia_gpu_is_said_plainly():
    hub = local_hub(FakeNvml(init_error=fake_nvml.NVMLError_LibraryNotFound))
    app = gpu_app(hub)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "No NVIDIA driver found on this machine" in screen_text(app), "the notice")
        assert "No ComfyUI server configured" in screen_text(app)


async def test_server_vram_from_the_simulator_and_free_memory_goes_up(sim):
    hub = GpuHub(interval=0.05)
    async with ComfyClient(sim.url) as client:
        hub.add_server("sim", client.system_stats)
        app = gpu_app(hub)
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.query_one(GpuView)
            await until(pilot, lambda: view.chosen == "server:sim:0", "the simulator's device")
            await pilot.pause()
            device = SystemStats.from_wire(recorded_system_stats()).devices[0]
            assert view.snapshot.get("server:sim:0").series["vram"].peak() == device.vram_total - device.vram_free
            text = screen_text(app)
            assert "utilisation, temperature, power: not reported by ComfyUI's /system_stats" in text
            await pilot.press("f")
            await until(pilot, lambda: bool(app.posted), "the free request")
            assert app.posted[0].server == "sim"


async def test_unreachable_server_is_shown_with_its_reason():
    hub = GpuHub(interval=5.0)
    async with ComfyClient("http://127.0.0.1:9") as client:
        hub.add_server("gone", client.system_stats)
        app = gpu_app(hub)
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.query_one(GpuView)
            await until(pilot, lambda: view.chosen == "down:gone", "the down row")
            await until(pilot, lambda: "Cannot reach ComfyUI at http://127.0.0.1:9" in screen_text(app), "why")
            assert "gone (down)" in screen_text(app)


def test_graphs_use_a_fixed_scale():
    assert bars([5.0, 6.0], 100.0, 10) == "▁▁", "5 % -> 6 % is a sliver, not a full bar"
    assert bars([0.0, 50.0, 100.0], 100.0, 3) == " ▄█"
    assert plot_rows([100.0, 50.0, 0.0], 100.0, 4, 2) == [" █  ", " ██ "]
    assert time_axis(120.0, 20) == "-2m00s ───────── now"


class FixedStats:
    """The recorded server, always the same (a snapshot must not depend on the clock)."""

    async def __call__(self) -> SystemStats:
        return SystemStats.from_wire(recorded_system_stats())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_gpu_snapshot(snap_compare, size):
    hub = GpuHub(interval=3600, clock=iter(range(10_000)).__next__)
    hub.add_local(NvmlReader(rising_gpus()))
    hub.add_server("studio", FixedStats())
    app = gpu_app(hub)

    async def sampled(pilot):
        view = pilot.app.query_one(GpuView)
        for _ in range(5):
            await hub.sample_once()
        await until(pilot, lambda: view.samples >= 1, "the first samples")
        view.show(hub.snapshot())
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=sampled)
