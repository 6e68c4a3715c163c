"""The demo writes only into its scratch folder, which is gone when it exits."""

from __future__ import annotations

import os
from pathlib import Path

from pistachio_tui.cli.demo_commands import demo_session
from pistachio_tui.config import data_dir, journal_path, state_dir
from pistachio_tui.fleet.build import batches_dir


def test_everything_the_app_writes_lands_in_the_scratch_folder():
    user_data = Path(os.environ["PISTACHIO_DATA_DIR"])
    with demo_session(autorun=False, train_step_seconds=0.01) as demo:
        for path in (data_dir(), state_dir(), journal_path(), batches_dir(), demo.comfy_dir, demo.run_dir):
            assert path.is_relative_to(demo.scratch), path
        scratch = demo.scratch
    assert not scratch.exists()
    assert data_dir() == user_data
