"""Typed errors of the training features; each message tells a person what to do."""

from __future__ import annotations

__all__ = ["TrainingError", "RunNotFound", "CheckpointUnusable", "PromoteRefused", "DatasetProblem"]


class TrainingError(Exception):
    """Base of every error raised by :mod:`pistachio_tui.training`."""

    @property
    def message(self) -> str:
        return str(self)


class RunNotFound(TrainingError):
    """The target is not a run folder, an output folder or a log file."""


class CheckpointUnusable(TrainingError):
    """The chosen ``epochN/`` is missing, empty or its safetensors header is broken."""


class PromoteRefused(TrainingError):
    """Promoting would overwrite a file, or the copy did not verify."""


class DatasetProblem(TrainingError):
    """The dataset folder cannot be prepared (missing, no images...)."""
