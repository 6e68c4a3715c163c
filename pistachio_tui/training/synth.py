"""Synthetic DiffusionPipe runs: console logs, run folders, TensorBoard data.

Used by the tests, the big-log benchmark and demos, so everything that reads
runs can be exercised without a GPU. Lines follow the exact formats of
DiffusionPipe and the DeepSpeed version it pins (see the training notes).
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import toml

from pistachio_tui.training.checkpoints import ADAPTER_FILE
from pistachio_tui.training.dataset import PREP_METADATA

__all__ = ["SynthRun", "ScalarWriter", "eval_curve", "log_lines", "oom_traceback", "tiny_safetensors",
           "train_loss", "write_run", "write_log"]

_TIME = "2026-08-20 10:{m:02d}:{s:02d},{ms:03d}"


def eval_curve(epochs: int, best_epoch: int, *, floor: float = 0.0812,
               baseline: float = 0.2) -> dict[int, float]:
    """Eval loss per epoch boundary (0 = before training) with one clear minimum."""
    losses = {0: baseline}
    for e in range(1, epochs + 1):
        if e <= best_epoch:
            losses[e] = floor + (baseline - floor) * 0.9 * (best_epoch - e) / best_epoch + (
                0.0 if e == best_epoch else 0.001)
        else:
            losses[e] = floor + 0.0015 * (e - best_epoch) + 0.0002 * (e - best_epoch) ** 2
    return losses


def train_loss(step: int) -> float:
    """A plausible noisy, slowly falling training loss (deterministic)."""
    wobble = ((step * 2654435761) % 1000) / 1000 - 0.5
    return round(0.12 + 0.08 / (1 + step / 50) + 0.03 * wobble, 4)


def _stamp(n: int) -> str:
    return _TIME.format(m=(n // 60) % 60, s=n % 60, ms=(n * 37) % 1000)


def oom_traceback(rank: int = 0) -> list[str]:
    """The traceback a distributed run prints when CUDA runs out of memory."""
    body = [
        "Traceback (most recent call last):",
        '  File "/opt/diffusion-pipe/train.py", line 918, in <module>',
        "    loss = model_engine.train_batch(iterator).item()",
        '  File "/usr/lib/python3/site-packages/deepspeed/runtime/pipe/engine.py", line 388, in train_batch',
        "    self._exec_schedule(sched)",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.27 GiB. GPU 0 has a total "
        "capacity of 23.65 GiB of which 301.06 MiB is free.",
    ]
    return [f"[rank{rank}]: {line}" for line in body]


def log_lines(*, epochs: int = 30, steps_per_epoch: int = 8, global_batch: int = 1,
              eval_every: int = 1, save_every: int = 1, caching: bool = True,
              nan_steps: frozenset[int] = frozenset(), crash_at_step: int | None = None,
              interleaved_traceback: bool = True, iter_time: float = 3.162) -> Iterator[str]:
    """Console lines of a whole run, without newlines, in the order the trainer prints them.

    ``crash_at_step`` ends the run with an OOM traceback from two ranks; the
    interleaved traceback is a harmless one a dataloader worker prints mid-run.
    ``iter_time`` is the seconds per step the trainer reports (speed and ETA come from it).
    """
    if caching:
        yield "caching latents: /data/lora/train"
        yield "caching text embeddings: /data/lora/train"
    yield f"Global batch size = {global_batch}"
    yield "Running eval"
    total = epochs * steps_per_epoch
    for step in range(1, total + 1):
        if step == crash_at_step:
            for a, b in zip(oom_traceback(0), oom_traceback(1)):
                yield a
                yield b
            return
        loss = "nan" if step in nan_steps else f"{train_loss(step):.4f}"
        yield (f"[{_stamp(step)}] [INFO] [logging.py:128:log_dist] [Rank 0] step={step}, "
               f"skipped=0, lr=[2e-05], mom=[(0.9, 0.99)]")
        yield (f"steps: {step} loss: {loss} iter time (s): {iter_time:.3f} "
               f"samples/sec: {global_batch / iter_time:.3f}")
        if interleaved_traceback and step == steps_per_epoch + 3:
            yield "Traceback (most recent call last):"
            yield f"[{_stamp(step)}] [INFO] [logging.py:128:log_dist] [Rank 0] unrelated info line"
            yield '  File "/usr/lib/python3/multiprocessing/queues.py", line 244, in _feed'
            yield "BrokenPipeError: [Errno 32] Broken pipe"
        if step % steps_per_epoch == 0:
            epoch = step // steps_per_epoch
            if epoch % save_every == 0 or epoch == epochs:
                yield f"Saving model to directory epoch{epoch}"
            if epoch < epochs:
                yield f"Started new epoch: {epoch + 1}"
            if epoch % eval_every == 0:
                yield "Running eval"
                yield "100%|██████████| 9/9 [00:04<00:00,  2.10it/s]"
    yield f"[Torch] Checkpoint global_step{total} is about to be saved!"
    yield "TRAINING COMPLETE!"


def write_log(path: Path, **kwargs) -> Path:
    """Write :func:`log_lines` to ``path`` (newline-terminated)."""
    with open(path, "w", encoding="utf-8") as fh:
        for line in log_lines(**kwargs):
            fh.write(line + "\n")
    return path


def tiny_safetensors(path: Path, tensors: dict[str, tuple[int, ...]] | None = None) -> Path:
    """A small valid safetensors file: header JSON + zero-filled bf16 tensors."""
    tensors = tensors or {"diffusion_model.blocks.0.attn.q.lora_A.weight": (4, 8),
                          "diffusion_model.blocks.0.attn.q.lora_B.weight": (8, 4)}
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors.items():
        nbytes = 2
        for dim in shape:
            nbytes *= dim
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return path


class ScalarWriter:
    """TensorBoard scalars through TensorBoard's own event writer (no test dependency).

    Same calls as ``tensorboardX.SummaryWriter``, which can be passed instead.
    """

    def __init__(self, logdir: str) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._writer = EventFileWriter(logdir)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


@dataclass
class SynthRun:
    output_dir: Path
    run_dir: Path
    log_path: Path
    eval_losses: dict[int, float]
    trigger: str | None
    dataset_dir: Path


def write_run(output_dir: Path, *, name: str = "20260820_10-00-00", epochs: int = 30,
              steps_per_epoch: int = 8, best_epoch: int = 17, eval_name: str = "eval",
              save_every: int = 1, trigger: str | None = "pstch", tensorboard: bool = True,
              log_name: str = "train.log", scalar_writer: Callable[[str], Any] = ScalarWriter,
              pace: Callable[[int], bool] | None = None, **log_options: Any) -> SynthRun:
    """A run folder as DiffusionPipe leaves it, plus its console log.

    Everything is written in the trainer's order, so with ``pace`` the run can
    be watched while it "trains": ``pace(step)`` is called after each step's
    lines are flushed and may sleep; returning False stops the run there.
    ``log_options`` go to :func:`log_lines` (``nan_steps``, ``crash_at_step``...).
    """
    run_dir = output_dir / name
    dataset_dir = _write_configs(output_dir, run_dir, epochs, eval_name, save_every, trigger)
    losses = eval_curve(epochs, best_epoch)
    writer = scalar_writer(str(run_dir)) if tensorboard else None
    log_path = run_dir / log_name
    lines = log_lines(epochs=epochs, steps_per_epoch=steps_per_epoch, save_every=save_every, **log_options)
    eval_every = log_options.get("eval_every", 1)
    step = 0
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            for line in lines:
                log.write(line + "\n")
                if line.startswith("steps: "):
                    step = int(line.split()[1])
                    _record_step(writer, step, line, steps_per_epoch, eval_every, losses, eval_name)
                    if pace is not None:
                        log.flush()
                        if writer is not None:
                            writer.flush()
                        if not pace(step):
                            break
                elif line == "Running eval" and step == 0 and writer is not None:
                    writer.add_scalar(f"{eval_name}/loss", losses[0], 0)
                elif line.startswith("Saving model to directory epoch"):
                    folder = run_dir / line.rsplit(" ", 1)[1]
                    tiny_safetensors(folder / ADAPTER_FILE)
                    (folder / "adapter_config.json").write_text(json.dumps({"r": 32, "lora_alpha": 32}))
                elif line.startswith("[Torch] Checkpoint global_step"):
                    (run_dir / f"global_step{step}").mkdir(exist_ok=True)
                    (run_dir / "latest").write_text(f"global_step{step}")
    finally:
        if writer is not None:
            writer.close()
    return SynthRun(output_dir, run_dir, log_path, losses, trigger, dataset_dir)


def _write_configs(output_dir: Path, run_dir: Path, epochs: int, eval_name: str, save_every: int,
                   trigger: str | None) -> Path:
    """The TOML copies the trainer puts in a new run, and the dataset's prep metadata."""
    run_dir.mkdir(parents=True, exist_ok=True)
    dataset_dir = output_dir / "dataset" / "train"
    dataset_dir.mkdir(parents=True, exist_ok=True)
    (dataset_dir / PREP_METADATA).write_text(json.dumps({"trigger": trigger}))
    dataset_toml = {"resolutions": [512], "enable_ar_bucket": True,
                    "directory": [{"path": str(dataset_dir), "num_repeats": 1}]}
    main_toml = {"output_dir": str(output_dir), "dataset": "dataset.toml", "epochs": epochs,
                 "micro_batch_size_per_gpu": 1, "pipeline_stages": 1,
                 "gradient_accumulation_steps": 1, "eval_every_n_epochs": 1,
                 "save_every_n_epochs": save_every,
                 "eval_datasets": [{"name": eval_name, "config": "eval_dataset.toml"}],
                 "model": {"type": "wan", "dtype": "bfloat16"},
                 "adapter": {"type": "lora", "rank": 32, "dtype": "bfloat16"},
                 "optimizer": {"type": "adamw_optimi", "lr": 2e-5}}
    (run_dir / "wan_lora.toml").write_text(toml.dumps(main_toml))
    (run_dir / "dataset.toml").write_text(toml.dumps(dataset_toml))
    return dataset_dir


def _record_step(writer: Any, step: int, line: str, steps_per_epoch: int, eval_every: int,
                 losses: dict[int, float], eval_name: str) -> None:
    """TensorBoard scalars of one step, in the trainer's order: loss, eval, epoch loss."""
    if writer is None:
        return
    writer.add_scalar("train/loss", float(line.split()[3]), step)
    if step % steps_per_epoch:
        return
    epoch = step // steps_per_epoch
    if epoch % eval_every == 0 and epoch in losses:
        writer.add_scalar(f"{eval_name}/loss_quantile_0.50", losses[epoch] * 1.1, step)
        writer.add_scalar(f"{eval_name}/loss", losses[epoch], step)
        writer.add_scalar("eval/eval_time_sec", 4.2, step)
    writer.add_scalar("train/epoch_loss", train_loss(step), epoch)
