import asyncio
from collections.abc import Callable

import pytest

from pistachio_tui.comfy.errors import ServerUnreachable
from pistachio_tui.comfy.types import Device, SystemStats
from pistachio_tui.gpu.hub import GpuHub
from pistachio_tui.gpu.nvml import NO_DRIVER, NvmlReader
from pistachio_tui.gpu.source import Level, SeriesShape, level_for
from tests.gpu import fake_nvml
from tests.gpu.fake_nvml import GIB, FakeNvml, two_gpus


def stats(used: int, total: int = 24 * GIB, torch_used: int = 0) -> SystemStats:
    device = Device("cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync", "cuda", 0,
                    total, total - used, 20 * GIB, 20 * GIB - torch_used)
    return SystemStats("posix", "0.8.0", "3.12", "2.7", 64 * GIB, 40 * GIB, [], [device], {})


class ScriptedStats:
    """Returns or raises the scripted items in turn (the last one repeats)."""

    def __init__(self, *items: SystemStats | Exception) -> None:
        self.items = list(items)

    async def __call__(self) -> SystemStats:
        item = self.items.pop(0) if len(self.items) > 1 else self.items[0]
        if isinstance(item, Exception):
            raise item
        return item


def clock_from(times: list[float]) -> Callable[[], float]:
    it = iter(times)
    last = [0.0]

    def now() -> float:
        last[0] = next(it, last[0])
        return last[0]
    return now


def test_levels() -> None:
    assert [level_for(f) for f in (None, 0.5, 0.9, 0.97, 1.0)] == [
        Level.OK, Level.OK, Level.WARN, Level.CRITICAL, Level.CRITICAL]


async def test_local_gpus_feed_series_peaks_and_levels() -> None:
    hub = GpuHub(shape=SeriesShape(capacity=10), clock=clock_from([1, 2, 3]))
    nvml = two_gpus()
    hub.add_local(NvmlReader(nvml))
    for _ in range(3):
        await hub.sample_once()
    snap = hub.snapshot()
    rtx, a100 = snap.sources
    assert snap.local_unavailable is None
    assert (rtx.key, rtx.label) == ("local:0", "NVIDIA GeForce RTX 4090 (#0)")
    assert rtx.series["vram"].values() == [4 * GIB, 12 * GIB, 23 * GIB]
    assert rtx.series["util"].values() == [10, 99, 100]
    assert "fan" not in rtx.series and rtx.fan_percent is None
    assert rtx.level is Level.WARN and a100.level is Level.OK
    assert rtx.peak_percent == pytest.approx(23 / 24 * 100) and rtx.peak_at == 3
    assert rtx.to_dict()["level"] == "warn"
    await hub.aclose()
    assert nvml.shutdowns == 1


async def test_no_driver_is_reported_once_and_not_retried() -> None:
    nvml = FakeNvml(init_error=fake_nvml.NVMLError_LibraryNotFound)
    hub = GpuHub()
    hub.add_local(NvmlReader(nvml))
    await hub.sample_once()
    await hub.sample_once()
    snap = hub.snapshot()
    assert snap.local_unavailable == NO_DRIVER and snap.sources == []
    await hub.aclose()


async def test_server_down_keeps_history_and_comes_back() -> None:
    down = ServerUnreachable("Cannot reach ComfyUI at http://gpu-box:8188 — is it running? (connection refused)")
    source = ScriptedStats(stats(4 * GIB, torch_used=3 * GIB), down, stats(23.5 * GIB))
    running = iter(["prompt-a", None])

    async def current() -> str | None:
        return next(running, None)
    hub = GpuHub(clock=clock_from([1, 2, 3]))
    hub.add_server("gpu-box", source, running=current)
    await hub.sample_once()
    await hub.sample_once()
    snap = hub.snapshot()
    (device,) = snap.sources
    assert (snap.servers[0].up, snap.servers[0].reason) == (False, str(down))
    assert (device.up, device.reason) == (False, str(down))
    assert device.series["vram"].values() == [4 * GIB]
    assert device.torch_used == 3 * GIB and device.peak_prompt == "prompt-a"
    assert snap.servers[0].ram.values() == [24 * GIB]
    await hub.sample_once()
    device = hub.snapshot().get("server:gpu-box:0")
    assert device.up and device.series["vram"].values() == [4 * GIB, 23.5 * GIB]
    assert device.level is Level.CRITICAL and device.peak_prompt is None


async def test_a_silent_server_times_out_with_a_reason() -> None:
    async def never() -> SystemStats:
        await asyncio.Event().wait()
        raise AssertionError
    hub = GpuHub()
    hub.add_server("stuck", never, timeout=0.01)
    await hub.sample_once()
    (server,) = hub.snapshot().servers
    assert not server.up and "did not answer" in server.reason


async def test_a_failing_running_prompt_lookup_does_not_mark_the_server_down() -> None:
    async def broken() -> str | None:
        raise RuntimeError("queue unavailable")
    hub = GpuHub()
    hub.add_server("box", ScriptedStats(stats(GIB)), running=broken)
    await hub.sample_once()
    (device,) = hub.snapshot().sources
    assert device.up and device.running_prompt is None


async def test_removed_server_leaves_the_snapshot_and_peaks_reset() -> None:
    hub = GpuHub(clock=clock_from([1, 2]))
    hub.add_server("a", ScriptedStats(stats(23 * GIB)))
    hub.add_server("b", ScriptedStats(stats(GIB)))
    await hub.sample_once()
    hub.remove_server("b")
    (device,) = hub.snapshot().sources
    assert device.key == "server:a:0" and [s.name for s in hub.snapshot().servers] == ["a"]
    hub.reset_peaks()
    assert device.peak_percent is None and device.series["vram"].peak() == 23 * GIB


async def test_run_loop_samples_until_cancelled() -> None:
    hub = GpuHub(interval=0.001)
    nvml = two_gpus()
    hub.add_local(NvmlReader(nvml))
    task = asyncio.create_task(hub.run())
    while nvml.reads < 3:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(hub.snapshot().sources[0].series["vram"]) >= 3
    await hub.aclose()


class FlakyReader(NvmlReader):
    """Real NVML reads, except the first ones fail with an error NVML does not classify."""

    def __init__(self, nvml: FakeNvml, failures: int) -> None:
        super().__init__(nvml)
        self.failures = failures

    def read(self):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("GPU fell off the bus")
        return super().read()


async def test_no_sampler_failure_ends_the_run_loop_and_each_shows_why() -> None:
    hub = GpuHub(interval=0.001)
    hub.add_local(FlakyReader(two_gpus(), failures=2))
    broken = stats(GIB)
    broken.devices[0].vram_free = None  # malformed figures: recording them raises TypeError
    hub.add_server("odd", ScriptedStats(stats(GIB), broken))
    await hub.sample_once()
    await hub.sample_once()
    snap = hub.snapshot()
    assert snap.local_unavailable == "RuntimeError: GPU fell off the bus"
    assert snap.servers[0].up is False and snap.servers[0].reason.startswith("TypeError")
    task = asyncio.create_task(hub.run())
    await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The local GPUs came back once the reads did, and say so.
    snap = hub.snapshot()
    assert snap.local_unavailable is None and snap.sources[0].up
    await hub.aclose()
