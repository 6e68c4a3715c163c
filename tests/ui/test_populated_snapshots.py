"""Snapshots of screens with data in them at 80×24: Queue, GPU, Pods and Batch at work.

Nothing that moves gets into the pixels: prompt ids come from a counter, the GPU
history is sampled on a fake clock from fixed figures, pod figures are the
simulated RunPod's, and the batch is drawn on a clock the test sets. Update with
``--snapshot-update`` (and say why in the commit).
"""

from __future__ import annotations

import shutil
import uuid
from itertools import count
from types import SimpleNamespace

import pytest

from pistachio_tui.cli.demo_commands import SimThread, runpod_environ, simulated_runpod
from pistachio_tui.comfy.session import CONNECTED, DOWN

from .helpers import DEAD_URL, make_app, until

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def relative_dirs(tmp_path, monkeypatch):
    """Paths on screen (data folder, batch output) read the same on every machine."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PISTACHIO_CONFIG_DIR", "pistachio-config")
    monkeypatch.setenv("PISTACHIO_DATA_DIR", "pistachio-data")


@pytest.fixture
def counted_prompt_ids(monkeypatch):
    """Prompt ids the tracker makes are a1000000-…, a2000000-…, … instead of random."""
    from pistachio_tui.comfy import tracker

    numbers = count(1)
    monkeypatch.setattr(tracker, "uuid", SimpleNamespace(
        uuid4=lambda: uuid.UUID(f"a{next(numbers)}000000-0000-4000-8000-000000000000")))


@pytest.fixture
def sim_thread():
    """A simulated ComfyUI on its own loop, as the demo runs it: a snapshot's app runs on a loop of its own."""
    sim = SimThread(step_delay=0.001)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def demo_runpod(monkeypatch, sim_thread):
    """The demo's simulated RunPod account; pods' ComfyUI behind a proxy nobody answers on."""
    runpod = simulated_runpod(DEAD_URL)
    sim_thread.call(runpod.start())
    try:
        for name, value in runpod_environ(runpod).items():
            monkeypatch.setenv(name, value)
        # The proxy address is on screen: one that reads the same every run (and never answers).
        monkeypatch.setenv("RUNPOD_PROXY_URL", DEAD_URL + "/proxy/{pod_id}-{port}")
        yield runpod
    finally:
        sim_thread.call(runpod.stop())


def test_pods_with_pods(snap_compare, tmp_path, demo_runpod):
    from pistachio_tui.ui.pods.view import PodsView

    app = make_app(tmp_path, ("studio", DEAD_URL))

    async def run_before(pilot) -> None:
        await until(pilot, lambda: app.manager.active.state == DOWN)
        await pilot.press("7")
        view = app.screen.query_one(PodsView)
        running = sum(1 for pod in demo_runpod.pods if pod["desiredStatus"] == "RUNNING")
        await until(pilot, lambda: view.state is not None and len(view.comfy_ok) == running)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def _wave(low: float, high: float, n: int, period: int = 30) -> list[float]:
    """A repeatable rise-and-fall from ``low`` to ``high`` and back, ``n`` samples long."""
    return [low + (high - low) * (1 - abs((i % period) / (period / 2) - 1)) for i in range(n)]


def test_gpu_with_history(snap_compare, tmp_path):
    """A local board sampled 90 times on a fake clock, beside a CPU server, drawn once: no live sampling."""
    from pistachio_tui.comfy.types import SystemStats
    from pistachio_tui.gpu.hub import GpuHub
    from pistachio_tui.gpu.nvml import NvmlReader
    from pistachio_tui.ui.gpu.view import GpuView
    from tests.conftest import load_fixture
    from tests.gpu.fake_nvml import GIB, FakeGpu, FakeNvml

    samples = 90
    proc = tmp_path / "proc"
    for pid, name in ((4242, "python3"), (5151, "Xorg")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "comm").write_text(f"{name}\n")
    board = FakeGpu("NVIDIA GeForce RTX 4090",
                    memory_used=[int(v * GIB) for v in _wave(6, 21, samples)],
                    util_gpu=[round(v) for v in _wave(10, 98, samples, period=18)],
                    temperature=[round(v) for v in _wave(45, 78, samples, period=45)],
                    power_mw=[int(v * 1000) for v in _wave(90, 420, samples, period=18)],
                    processes=[(4242, 19 * GIB), (5151, 300 * 1024 ** 2)])
    wire = load_fixture("system_stats")["body"]
    free = iter(_wave(23.6, 16.0, samples))

    async def cpu_stats() -> SystemStats:
        stats = SystemStats.from_wire(wire)
        stats.devices[0].vram_free = int(next(free) * GIB)
        return stats

    ticks = iter(range(1_796_032_800, 1_796_032_800 + 10 * samples))
    hub = GpuHub(interval=1.0, clock=lambda: float(next(ticks)))
    hub.add_local(NvmlReader(FakeNvml([board]), proc_root=proc))
    hub.add_server("cpu-box", cpu_stats)
    app = make_app(tmp_path, ("cpu-box", DEAD_URL))

    async def run_before(pilot) -> None:
        await until(pilot, lambda: app.manager.active.state == DOWN)
        await pilot.press("4")
        view = app.screen.query_one(GpuView)
        # The screen's own sampling stops: the snapshot draws the fixed history below, once.
        view.workers.cancel_group(view, "gpu-sample")
        await pilot.pause()
        for _ in range(samples):
            await hub.sample_once()
        view.hub = hub
        view.show(hub.snapshot())
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_queue_with_a_running_prompt_and_history(snap_compare, tmp_path, sim_thread, counted_prompt_ids,
                                                 monkeypatch):
    """Two finished prompts, one running (held at its sampler's first step), one waiting behind it."""
    from pistachio_tui.sim import executor
    from pistachio_tui.ui.queue.rows import WORKFLOW_KEY

    # The server's clock stands still: a loaded machine must not make a prompt take "1s" instead of "0s".
    monkeypatch.setattr(executor, "now_ms", lambda: 1_796_032_800_000)

    from .helpers import fresh_prompt

    sim = sim_thread.server
    app = make_app(tmp_path, ("studio", sim_thread.url))

    async def run_before(pilot) -> None:
        session = app.manager.active
        await until(pilot, lambda: session.state == CONNECTED)
        for seed, name in ((111, "fox.json"), (222, "castle.json")):
            await session.submit(fresh_prompt(sim, seed), {WORKFLOW_KEY: name})
        await until(pilot, lambda: len(session.history) == 2)
        # A step that takes an hour: the third prompt stays on its sampler's first step.
        sim.knobs.step_delay = 3600
        await session.submit(fresh_prompt(sim, 333), {WORKFLOW_KEY: "portrait of a [red] fox.json"})
        await session.submit(fresh_prompt(sim, 444), {WORKFLOW_KEY: "fox.json"})
        await until(pilot, lambda: len(session.queue.pending) == 1 and session.running() is not None
                    and session.running().current_node is not None)
        # The memory strip is full width and flat: as many equal samples as it has cells.
        session.vram_used.extend([session.vram_used[-1]] * 100)
        await pilot.press("3")
        history = app.screen.query_one("#history")
        await until(pilot, lambda: all("▀" in str(history.get_row_at(i)[-1]) for i in range(2)))
        app.clear_notifications()
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_batch_running(snap_compare, tmp_path, sim_thread):
    """A resumed batch: two jobs done by an earlier run, the rest held on the server's sampler."""
    from tests.fleet.test_batch_cli import SIM_WORKFLOW

    shutil.copy(SIM_WORKFLOW, tmp_path / "wf.json")
    batch = tmp_path / "sweep.toml"
    spec = 'workflow = "wf.json"\nseed_mode = "increment"\nstart_seed = 100\noutput = "renders/sweep"\n'
    batch.write_text(spec + "count = 2\n")
    app = make_app(tmp_path, ("studio", sim_thread.url))

    async def run_before(pilot) -> None:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        await pilot.press("8", "o", *"sweep.toml", "enter")
        view = app.screen.view
        await until(pilot, lambda: len(view.jobs) == 2)
        await pilot.press("s")
        await until(pilot, lambda: view.result is not None and view.result.ok)
        batch.write_text(spec + "count = 5\n")
        await pilot.press("o", "enter")
        await until(pilot, lambda: len(view.jobs) == 5)
        sim_thread.server.knobs.step_delay = 3600
        await pilot.press("s")
        await until(pilot, lambda: view.counts()["running"] >= 1)
        await pilot.pause(0.5)
        app.clear_notifications()
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def test_the_demo_pods_table_fits_80_columns(tmp_path, monkeypatch):
    """Every column of the demo's pods, the ComfyUI one last, without scrolling sideways."""
    from pistachio_tui.ui.pods.view import PodsView, table_gpu_name

    assert table_gpu_name("NVIDIA A100 80GB PCIe") == "A100 80GB" and table_gpu_name("NVIDIA H100 NVL") == "H100"
    runpod = simulated_runpod(DEAD_URL)
    await runpod.start()
    try:
        for name, value in runpod_environ(runpod).items():
            monkeypatch.setenv(name, value)
        app = make_app(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("7")
            view = app.screen.query_one(PodsView)
            await until(pilot, lambda: view.state is not None and len(view.comfy_ok) == 2)
            await pilot.pause(0.2)
            table = view.query_one("#pods-table")
            assert table.virtual_size.width <= table.size.width, (table.virtual_size, table.size)
    finally:
        await runpod.stop()
