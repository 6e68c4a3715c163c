"""Console lines of DiffusionPipe / DeepSpeed become typed events."""

from __future__ import annotations

import math

from pistachio_tui.training import logparse as lp
from pistachio_tui.training.synth import oom_traceback


def feed_all(lines: list[str]) -> list[lp.LogEvent]:
    parser = lp.LineParser()
    events: list[lp.LogEvent] = []
    for number, line in enumerate(lines, 1):
        events.extend(parser.feed(line, number))
    return events


def test_deepspeed_step_lines():
    events = feed_all([
        "[2026-08-20 10:00:05,123] [INFO] [logging.py:128:log_dist] [Rank 0] step=12, skipped=1, "
        "lr=[1.9e-05, 2e-05], mom=[(0.9, 0.99), (0.9, 0.99)]",
        "steps: 12 loss: 0.5994 iter time (s): 3.162 samples/sec: 0.316",
    ])
    assert events == [lp.StepInfo(12, 1, (1.9e-05, 2e-05)), lp.StepLoss(12, 0.5994, 3.162, 0.316)]


def test_nested_lr_list_is_flattened():
    (info,) = feed_all(["[Rank 0] step=3, skipped=0, lr=[[1e-05, 1e-05]], mom=[[0.9]]"])
    assert info == lp.StepInfo(3, 0, (1e-05, 1e-05))


def test_nan_and_inf_loss_are_values_and_errors():
    events = feed_all(["steps: 5 loss: nan iter time (s): 3.0 samples/sec: 0.33",
                       "steps: 6 loss: inf iter time (s): 3.0 samples/sec: 0.33"])
    losses = [e for e in events if isinstance(e, lp.StepLoss)]
    assert math.isnan(losses[0].loss) and math.isinf(losses[1].loss)
    errors = [e for e in events if isinstance(e, lp.ErrorSeen)]
    assert [e.kind for e in errors] == ["nan_loss", "nan_loss"]
    assert errors[0].line_no == 1


def test_trainer_markers():
    events = feed_all([
        "Global batch size = 4",
        "caching latents: /data/train",
        "caching text embeddings: /data/train",
        "Started new epoch: 2",
        "Running eval",
        "Saving model to directory epoch3",
        "Saving model to directory step400",
        "[Torch] Checkpoint global_step400 is about to be saved!",
        "Resuming training from checkpoint. Resuming at epoch: 3, step: 401",
        "Manually quitting",
        "TRAINING COMPLETE!",
    ])
    assert events == [
        lp.GlobalBatchSize(4), lp.Caching("latents", "/data/train"),
        lp.Caching("text embeddings", "/data/train"), lp.EpochStarted(2), lp.EvalStarted(),
        lp.ModelSaved("epoch3", 3, None), lp.ModelSaved("step400", None, 400), lp.CheckpointSaved(400),
        lp.Resumed(3, 401), lp.ManualQuit(), lp.TrainingComplete(),
    ]


def test_rank_prefixed_oom_traceback_from_two_ranks():
    lines = [x for pair in zip(oom_traceback(0), oom_traceback(1)) for x in pair]
    errors = [e for e in feed_all(lines) if isinstance(e, lp.ErrorSeen)]
    assert [e.kind for e in errors] == ["oom", "oom"]
    first = errors[0]
    assert first.text.startswith("torch.OutOfMemoryError: CUDA out of memory")
    assert first.traceback[0].startswith("Traceback") and len(first.traceback) == 6
    assert first.traceback_line == 1 and first.line_no == 11
    assert "blocks_to_swap" in first.suggestion and "expandable_segments:True" in first.suggestion
    assert "float8" in first.suggestion and "unsloth" in first.suggestion


def test_blockswap_setup_oom_empty_dataset_and_missing_checkpoint():
    events = feed_all([
        "RuntimeError: CUDA error: out of memory",
        "RuntimeError: Processed dataset was empty. Probably batch size is too large.",
        "[WARNING] Unable to find latest file at /runs/x/latest, if trying to load latest checkpoint please ...",
    ])
    assert [e.kind for e in events if isinstance(e, lp.ErrorSeen)] == ["oom_setup", "empty_dataset", "no_checkpoint"]


def test_traceback_with_unrelated_lines_interleaved():
    events = feed_all([
        "Traceback (most recent call last):",
        "steps: 7 loss: 0.2 iter time (s): 1.0 samples/sec: 1.0",
        '  File "x.py", line 1, in <module>',
        "ValueError: boom",
    ])
    assert isinstance(events[0], lp.StepLoss)
    (error,) = [e for e in events if isinstance(e, lp.ErrorSeen)]
    assert error.kind == "exception" and error.text == "ValueError: boom" and error.line_no == 4
    assert error.traceback_line == 1
    assert error.traceback == ("Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
                               "ValueError: boom")


def test_exception_names_outside_a_traceback_are_not_errors():
    assert feed_all(["ValueError: printed as text by someone", "plain line"]) == []
