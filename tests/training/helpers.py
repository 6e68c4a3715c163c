"""Shared builders for the training tests."""

from __future__ import annotations

from pathlib import Path

from tensorboardX import SummaryWriter

from pistachio_tui.training.synth import SynthRun, write_run


def make_run(tmp_path: Path, **kwargs) -> SynthRun:
    """The acceptance run: 30 epochs, 8 steps each, eval loss lowest at epoch 17.

    TensorBoard data is written by tensorboardX, a writer independent of the reader under test.
    """
    kwargs.setdefault("scalar_writer", SummaryWriter)
    return write_run(tmp_path / "output", **kwargs)


def make_comfy(tmp_path: Path) -> Path:
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "loras").mkdir(parents=True)
    (comfy / "main.py").write_text("")
    return comfy
