"""Pistachio: a terminal workbench for ComfyUI, RunPod pods and DiffusionPipe training."""

__version__ = "0.1.0"
