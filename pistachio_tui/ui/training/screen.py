"""Training screen: hosts the DiffusionPipe ``TrainingView`` (runs, curves, epochs, promote)."""

from __future__ import annotations

from textual.app import ComposeResult

from pistachio_tui.ui.base import PistachioScreen
from pistachio_tui.ui.training.view import COMMANDS, TrainingView


class TrainingScreen(PistachioScreen):
    """Follow a LoRA training run and promote the chosen epoch."""

    MODE = "training"
    CSS_PATH = ["screen.tcss", "view.tcss"]
    SUMMARY = "LoRA training runs: loss curves, epochs, checkpoints, promote"
    VIEW_CLASS = TrainingView
    VIEW_COMMANDS = COMMANDS
    #: Not the path input: the number keys must keep switching screens.
    AUTO_FOCUS = "#train-epochs"

    def compose_body(self) -> ComposeResult:
        yield TrainingView(self.papp.settings, run=self.papp.initial_run, id="training-view")
