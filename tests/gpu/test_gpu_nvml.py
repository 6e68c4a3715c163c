import importlib.util
from pathlib import Path

import pytest

from pistachio_tui.gpu.nvml import NO_DRIVER, NvmlReader, NvmlUnavailable, process_name
from tests.gpu import fake_nvml
from tests.gpu.fake_nvml import GIB, NOT_SUPPORTED, FakeGpu, FakeNvml, two_gpus


def test_two_gpus_read_with_scripted_values_and_units() -> None:
    nvml = two_gpus()
    reader = NvmlReader(nvml)
    first, second = reader.read(), reader.read()
    assert [s.name for s in first] == ["NVIDIA GeForce RTX 4090", "NVIDIA A100 80GB PCIe"]
    assert [s.memory_used for s in (first[0], second[0])] == [4 * GIB, 12 * GIB]
    assert second[0].util_gpu == 99.0
    assert first[0].power_w == 402.0 and first[0].power_limit_w == 450.0
    assert first[1].memory_total == 80 * GIB and first[1].uuid == "GPU-a100"
    reader.close()
    reader.close()
    assert (nvml.inits, nvml.shutdowns) == (1, 1)


def test_not_supported_fields_become_none_without_failing_the_sample() -> None:
    gpu = FakeGpu(fan=NOT_SUPPORTED, temperature=NOT_SUPPORTED, power_mw=fake_nvml.NVMLError_NoPermission,
                  util_gpu=NOT_SUPPORTED, processes=NOT_SUPPORTED)
    (sample,) = NvmlReader(FakeNvml([gpu])).read()
    assert (sample.fan_percent, sample.temperature_c, sample.power_w, sample.util_gpu) == (None,) * 4
    assert sample.processes == ()
    assert sample.memory_used == 2 * GIB and sample.power_limit_w == 450.0


def test_memory_falls_back_to_v1_and_a_lost_gpu_keeps_its_slot() -> None:
    gpus = [FakeGpu(memory_v2_error=fake_nvml.NVMLError_FunctionNotFound),
            FakeGpu(handle_error=fake_nvml.NVMLError_GpuIsLost)]
    old, lost = NvmlReader(FakeNvml(gpus)).read()
    assert old.memory_used == 2 * GIB
    assert lost.index == 1 and lost.name is None and lost.memory_used is None


@pytest.mark.parametrize("error", [fake_nvml.NVMLError_LibraryNotFound, fake_nvml.NVMLError_DriverNotLoaded])
def test_no_driver_is_a_state_with_a_reason(error: type) -> None:
    reader = NvmlReader(FakeNvml(init_error=error))
    with pytest.raises(NvmlUnavailable) as info:
        reader.read()
    assert info.value.reason == NO_DRIVER
    assert "remote servers still work" in str(info.value)
    reader.close()


def test_other_init_errors_name_the_driver_error() -> None:
    with pytest.raises(NvmlUnavailable, match="Insufficient Permissions"):
        NvmlReader(FakeNvml(init_error=fake_nvml.NVMLError_NoPermission)).open()


def test_real_pynvml_without_the_library_gives_the_no_driver_state() -> None:
    assert importlib.util.find_spec("pynvml") is not None
    reader = NvmlReader()
    try:
        samples = reader.read()
    except NvmlUnavailable as exc:
        assert exc.reason == NO_DRIVER
    else:  # a machine with a real GPU: the real path must work too
        assert all(s.index == i for i, s in enumerate(samples))
    finally:
        reader.close()


def test_process_names_come_from_proc_and_hidden_ones_are_none(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "comm").write_text("python3\n")
    gpu = FakeGpu(processes=[(42, 3 * GIB), (43, None)])
    (sample,) = NvmlReader(FakeNvml([gpu]), proc_root=tmp_path).read()
    assert [(p.pid, p.name, p.used_bytes) for p in sample.processes] == [(42, "python3", 3 * GIB), (43, None, None)]
    assert process_name(99, tmp_path) is None
