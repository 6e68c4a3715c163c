"""Settings that make no sense are refused with the file, the line and the range to use."""

from __future__ import annotations

import pytest

from pistachio_tui.config import ConfigError, load_settings


@pytest.mark.parametrize("line", ["gpu_interval = -1", "gpu_interval = 0", "gpu_interval = nan",
                                  "gpu_interval = inf", "gpu_interval = 1e9", "idle_minutes = -5",
                                  "idle_minutes = nan"])
def test_out_of_range_numbers_are_refused_with_their_line(tmp_path, line):
    path = tmp_path / "settings.toml"
    path.write_text(f'theme = "pistachio"\n# a comment\n{line}\n\n[[servers]]\nurl = "http://127.0.0.1:8188"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message and "line 3:" in message and "out of range" in message
    assert "Traceback" not in message


def test_numbers_in_range_load(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("gpu_interval = 0.5\nidle_minutes = 15\n")
    settings = load_settings(path)
    assert (settings.gpu_interval, settings.idle_minutes) == (0.5, 15.0)
