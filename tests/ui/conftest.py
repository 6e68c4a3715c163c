"""The app's GPU screen reads a fake NVML with no driver, so screens draw the same on any machine."""

from __future__ import annotations

import pytest

from pistachio_tui.ui.gpu.screen import GpuScreen
from tests.gpu.fake_nvml import FakeNvml, NVMLError_LibraryNotFound


@pytest.fixture(autouse=True)
def no_local_gpu(monkeypatch):
    monkeypatch.setattr(GpuScreen, "NVML", FakeNvml(init_error=NVMLError_LibraryNotFound))
