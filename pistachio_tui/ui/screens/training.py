"""Training screen: DiffusionPipe runs, loss curves, checkpoints, promotion to ComfyUI."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll

from pistachio_tui.ui.screens.base import PistachioScreen
from pistachio_tui.ui.widgets.coming_panel import ComingPanel

COMING = """\
[b]Runs[/b]        every DiffusionPipe run folder, live or finished
[b]Loss[/b]        loss and eval-loss curves, with the convergence epoch marked
[b]Epochs[/b]      epoch / step / ETA table and the checkpoint of each epoch
[b]Promote[/b]     copy the chosen adapter into ComfyUI's models/loras under a clear name"""


class TrainingScreen(PistachioScreen):
    """Follow and finish LoRA training runs."""

    MODE = "training"
    CSS_PATH = "training.tcss"
    SUMMARY = "LoRA training runs (coming)"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="training-body"):
            yield ComingPanel("Training — what's coming", COMING)
