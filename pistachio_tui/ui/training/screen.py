"""Training screen: hosts the DiffusionPipe ``TrainingView`` (runs, curves, epochs, promote)."""

from __future__ import annotations

from pistachio_tui.ui.base import ViewScreen
from pistachio_tui.ui.training.view import COMMANDS, TrainingView


class TrainingScreen(ViewScreen):
    """Follow a LoRA training run and promote the chosen epoch."""

    MODE = "training"
    SUMMARY = "LoRA training runs: loss curves, epochs, checkpoints, promote"
    VIEW_CLASS = TrainingView
    VIEW_COMMANDS = COMMANDS
    #: Not the path input: the number keys must keep switching screens.
    AUTO_FOCUS = "#train-epochs"

    def make_view(self) -> TrainingView:
        return TrainingView(self.papp.settings, run=self.papp.initial_run, id="training-view")
