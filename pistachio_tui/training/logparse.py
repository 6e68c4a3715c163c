"""Turn DiffusionPipe / DeepSpeed console lines into typed events.

Events are slotted dataclasses (not frozen: frozen ones are several times
slower to build, and a long log has millions of step lines); treat them as
read-only.

DiffusionPipe prints little of its own (epochs, evals, saves); the per-step
figures come from DeepSpeed, two lines per step. Distributed runs prefix every
line of a traceback with ``[rankN]: ``, and several ranks may interleave, so
the parser strips that prefix and keeps one open traceback per rank.
"""

from __future__ import annotations

import functools
import math
import re
from collections import deque
from dataclasses import dataclass, field

__all__ = [
    "StepInfo", "StepLoss", "EpochStarted", "EvalStarted", "ModelSaved", "CheckpointSaved",
    "Resumed", "TrainingComplete", "ManualQuit", "GlobalBatchSize", "Caching", "ErrorSeen",
    "LogEvent", "LineParser", "SUGGESTIONS",
]


@dataclass(slots=True)
class StepInfo:
    """DeepSpeed's ``[Rank 0] step=N, skipped=K, lr=[...]`` line."""
    step: int
    skipped: int
    lr: tuple[float, ...]


@dataclass(slots=True)
class StepLoss:
    """DeepSpeed's ``steps: N loss: X iter time (s): T samples/sec: S`` line."""
    step: int
    loss: float
    iter_time: float | None
    samples_per_sec: float | None


@dataclass(slots=True)
class EpochStarted:
    epoch: int


@dataclass(slots=True)
class EvalStarted:
    pass


@dataclass(slots=True)
class ModelSaved:
    """``Saving model to directory epochE`` (or ``stepN``)."""
    name: str
    epoch: int | None
    step: int | None


@dataclass(slots=True)
class CheckpointSaved:
    """DeepSpeed writing the resume state ``global_stepN``."""
    step: int


@dataclass(slots=True)
class Resumed:
    epoch: int
    step: int


@dataclass(slots=True)
class TrainingComplete:
    pass


@dataclass(slots=True)
class ManualQuit:
    pass


@dataclass(slots=True)
class GlobalBatchSize:
    size: int


@dataclass(slots=True)
class Caching:
    """``caching latents: <path>`` / ``caching text embeddings: <path>``."""
    what: str
    path: str


@dataclass(slots=True)
class ErrorSeen:
    """A failure worth showing: ``kind`` is one of the keys of :data:`SUGGESTIONS`."""
    kind: str
    line_no: int
    text: str
    suggestion: str
    traceback: tuple[str, ...] = ()
    #: Line number where the traceback began, to scroll a log view there.
    traceback_line: int | None = None


LogEvent = (StepInfo | StepLoss | EpochStarted | EvalStarted | ModelSaved | CheckpointSaved
            | Resumed | TrainingComplete | ManualQuit | GlobalBatchSize | Caching | ErrorSeen)

_OOM_ADVICE = (
    "Lower VRAM use: set blocks_to_swap (top level, needs pipeline_stages = 1), "
    "transformer_dtype = 'float8' under [model], activation_checkpointing = 'unsloth', "
    "optimizer AdamW8bitKahan, a smaller resolution or fewer frame buckets; "
    "launch with PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True."
)

#: What to tell the user for each kind of error.
SUGGESTIONS: dict[str, str] = {
    "oom": "CUDA ran out of memory. " + _OOM_ADVICE,
    "oom_setup": (
        "CUDA out of memory while setting up (often block swap pinning host memory, common on WSL2): "
        "lower blocks_to_swap or free host RAM; if it happens during training: " + _OOM_ADVICE
    ),
    "nan_loss": (
        "Loss became NaN/inf and training does not stop on it: lower the learning rate, "
        "check gradient_clipping, and pick a checkpoint saved before the NaN."
    ),
    "empty_dataset": (
        "The processed dataset was empty: the batch is larger than the images per size bucket. "
        "Raise num_repeats in the dataset TOML or lower micro_batch_size_per_gpu / gradient_accumulation_steps."
    ),
    "no_checkpoint": (
        "Resume found no global_stepN checkpoint in the run folder: start without "
        "--resume_from_checkpoint, or name a run folder that has one."
    ),
    "exception": "The trainer raised an exception; read the traceback's last lines.",
}

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf|NaN|Inf)"
_RANK_PREFIX = re.compile(r"^\[rank(\d+)\]:\s?")
_STEP_INFO = re.compile(r"\[Rank \d+\] step=(\d+), skipped=(\d+), lr=(.*?)(?:, mom=|$)")
_STEP_LOSS = re.compile(
    rf"steps: (\d+) loss: ({_NUM})(?: iter time \(s\): ({_NUM}))?(?: samples/sec: ({_NUM}))?"
)
_EPOCH = re.compile(r"Started new epoch: (\d+)")
_SAVE = re.compile(r"Saving model to directory (\S+)")
_CKPT = re.compile(r"Checkpoint global_step(\d+) is about to be saved")
_RESUME = re.compile(r"Resuming at epoch: (\d+), step: (\d+)")
_GBS = re.compile(r"Global batch size = (\d+)")
_CACHING = re.compile(r"caching (latents|text embeddings): (.*)$")
_FLOAT = re.compile(_NUM)
_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b(?::|$)")
_SPECIFIC_ERRORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("oom", re.compile(r"(?:torch\.)?(?:cuda\.)?OutOfMemoryError: CUDA out of memory")),
    ("oom_setup", re.compile(r"RuntimeError: CUDA error: out of memory")),
    ("empty_dataset", re.compile(r"Processed dataset was empty")),
    ("no_checkpoint", re.compile(r"Unable to find latest file")),
)
#: Every specific error line holds one of these; lines without them skip the regexes.
_ERROR_WORDS = ("out of memory", "dataset was empty", "Unable to find latest")
_MAX_TRACEBACK_LINES = 40
_MAX_OPEN_TRACEBACKS = 16


@dataclass
class _OpenTraceback:
    start_line: int
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=_MAX_TRACEBACK_LINES))


class LineParser:
    """Stateful parser: feed lines in order, get the events each line produces.

    State is only the open tracebacks (bounded), so one parser per log file;
    call :meth:`reset` when the file is truncated or rotated.
    """

    def __init__(self) -> None:
        self._tracebacks: dict[str, _OpenTraceback] = {}

    def reset(self) -> None:
        self._tracebacks.clear()

    def feed(self, line: str, line_no: int) -> list[LogEvent]:
        """Events found in one line (without its newline); ``line_no`` counts from 1."""
        rank = ""
        if line.startswith("[rank"):
            m = _RANK_PREFIX.match(line)
            if m:
                rank = m.group(1)
                line = line[m.end():]
        line = line.rstrip("\r")
        events: list[LogEvent] = []
        tb = self._track_traceback(rank, line, line_no)
        # Step lines are nearly all of a log: once one matched, nothing else can.
        if "step" in line and self._parse_steps(line, line_no, events):
            return events
        self._parse_markers(line, events)
        specific = self._specific_error(line, line_no, tb)
        if specific is not None:
            events.append(specific)
        elif tb is not None and _EXC_LINE.match(line):
            events.append(ErrorSeen("exception", line_no, line.strip(), SUGGESTIONS["exception"],
                                    tuple(tb.lines), tb.start_line))
        return events

    def _track_traceback(self, rank: str, line: str, line_no: int) -> _OpenTraceback | None:
        """Keep the lines of an open traceback; return it if ``line`` closes it."""
        if line.startswith("Traceback (most recent call last)"):
            if len(self._tracebacks) >= _MAX_OPEN_TRACEBACKS:
                self._tracebacks.pop(next(iter(self._tracebacks)))
            opened = _OpenTraceback(line_no)
            opened.lines.append(line)
            self._tracebacks[rank] = opened
            return None
        tb = self._tracebacks.get(rank)
        if tb is None:
            return None
        # Without a rank prefix, unrelated output can interleave with a traceback:
        # only indented lines, chained-exception notes and the final exception belong to it.
        if line.startswith((" ", "\t", "During handling", "The above exception", "^", "~")) or not line:
            tb.lines.append(line)
            return None
        if _EXC_LINE.match(line) or any(word in line for word in _ERROR_WORDS):
            tb.lines.append(line)
            del self._tracebacks[rank]
            return tb
        if rank:
            tb.lines.append(line)
        return None

    @staticmethod
    def _parse_steps(line: str, line_no: int, events: list[LogEvent]) -> bool:
        m = _STEP_INFO.search(line) if "] step=" in line else None
        if m:
            events.append(StepInfo(int(m.group(1)), int(m.group(2)), _lr_values(m.group(3))))
            return True
        m = _STEP_LOSS.search(line) if "steps: " in line else None
        if m:
            loss = float(m.group(2))
            events.append(StepLoss(int(m.group(1)), loss, _opt_float(m.group(3)), _opt_float(m.group(4))))
            if not math.isfinite(loss):
                events.append(ErrorSeen("nan_loss", line_no, line.strip(), SUGGESTIONS["nan_loss"]))
            return True
        return False

    @staticmethod
    def _parse_markers(line: str, events: list[LogEvent]) -> None:
        # Cheap substring tests first: regexes run only on the rare lines that can match.
        if "Started new epoch" in line:
            if m := _EPOCH.search(line):
                events.append(EpochStarted(int(m.group(1))))
        elif line.startswith("Running eval"):
            events.append(EvalStarted())
        elif "Saving model to directory" in line:
            if m := _SAVE.search(line):
                events.append(_model_saved(m.group(1)))
        elif "Checkpoint global_step" in line:
            if m := _CKPT.search(line):
                events.append(CheckpointSaved(int(m.group(1))))
        elif "Resuming at epoch" in line:
            if m := _RESUME.search(line):
                events.append(Resumed(int(m.group(1)), int(m.group(2))))
        elif "TRAINING COMPLETE!" in line:
            events.append(TrainingComplete())
        elif line.startswith("Manually quitting"):
            events.append(ManualQuit())
        elif "Global batch size" in line:
            if m := _GBS.search(line):
                events.append(GlobalBatchSize(int(m.group(1))))
        elif "caching " in line:
            if m := _CACHING.search(line):
                events.append(Caching(m.group(1), m.group(2).strip()))

    @staticmethod
    def _specific_error(line: str, line_no: int, tb: _OpenTraceback | None) -> ErrorSeen | None:
        if not any(word in line for word in _ERROR_WORDS):
            return None
        for kind, pattern in _SPECIFIC_ERRORS:
            if pattern.search(line):
                if tb is None:
                    return ErrorSeen(kind, line_no, line.strip(), SUGGESTIONS[kind])
                return ErrorSeen(kind, line_no, line.strip(), SUGGESTIONS[kind], tuple(tb.lines), tb.start_line)
        return None


def _model_saved(name: str) -> ModelSaved:
    name = name.rstrip("/").rsplit("/", 1)[-1]
    m = re.fullmatch(r"(epoch|step)(\d+)", name)
    if m is None:
        return ModelSaved(name, None, None)
    number = int(m.group(2))
    return ModelSaved(name, number if m.group(1) == "epoch" else None, number if m.group(1) == "step" else None)


@functools.lru_cache(maxsize=64)
def _lr_values(text: str) -> tuple[float, ...]:
    """Parse ``[2e-05]`` / ``[[1e-05, 1e-05]]``; cached since the schedule repeats values."""
    return tuple(float(x) for x in _FLOAT.findall(text))


def _opt_float(text: str | None) -> float | None:
    return None if text is None else float(text)
