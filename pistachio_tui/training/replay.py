"""Write a run folder the way DiffusionPipe's training loop does, without a GPU.

Follows the main loop of upstream ``train.py`` and ``utils/saver.py``
(snapshot of 2026-08-20) step by step, so tests exercise every combination
real runs produce: for each step the trainer

1. runs the step (DeepSpeed prints ``[Rank 0] step=N ...`` and ``steps: N loss: ...``
   every ``steps_per_print`` steps);
2. ``Saver.process_epoch``: at an epoch's last step writes a resume state if
   ``checkpoint_every_n_epochs`` divides the epoch, saves ``epochE/`` if
   ``save_every_n_epochs`` divides it, then prints ``Started new epoch: E+1``
   (nothing after the last epoch);
3. logs ``train/loss`` at x = step (x = examples with ``x_axis_examples``)
   when ``logging_steps`` divides the step;
4. evaluates (``<name>/loss_quantile_*``, ``<name>/loss``, ``eval/eval_time_sec``
   at the same x) when ``eval_every_n_steps`` divides the step or the epoch
   just ended and ``eval_every_n_epochs`` divides it;
5. logs ``train/epoch_loss`` at x = epoch when an epoch ended;
6. ``Saver.process_step``: saves ``stepN/`` if ``save_every_n_steps`` divides
   the step, and writes a resume state when the timer fires (here: the steps
   in ``checkpoint_steps``); stops after ``max_steps``.

At the end it writes the final resume state and model unless that step just
saved them, and prints ``TRAINING COMPLETE!``. A resumed run
(:func:`resume_run`) opens a new event file in the same folder, starts after
the newest ``global_stepN`` and overwrites saves it reaches again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import toml

from pistachio_tui.training.checkpoints import ADAPTER_FILE
from pistachio_tui.training.synth import ScalarWriter, tiny_safetensors, train_loss

__all__ = ["TrainerConfig", "replay_run", "resume_run"]

_QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class TrainerConfig:
    """The main-TOML keys that shape a run folder, plus how many steps an epoch has."""
    epochs: int = 10
    steps_per_epoch: int = 8
    #: micro batch × gradient accumulation × data-parallel GPUs.
    global_batch: int = 1
    save_every_n_epochs: int | None = 1
    save_every_n_steps: int | None = None
    eval_every_n_epochs: int | None = 1
    eval_every_n_steps: int | None = None
    eval_before_first_step: bool = True
    logging_steps: int = 1
    steps_per_print: int = 1
    x_axis_examples: bool = False
    max_steps: int | None = None
    checkpoint_every_n_epochs: int | None = None
    #: Steps at which ``checkpoint_every_n_minutes`` fires (a timer upstream).
    checkpoint_steps: frozenset[int] = field(default_factory=frozenset)
    eval_name: str = "eval"
    config_name: str = "wan_lora.toml"

    def main_toml(self, output_dir: Path) -> dict[str, Any]:
        data: dict[str, Any] = {
            "output_dir": str(output_dir), "dataset": "dataset.toml", "epochs": self.epochs,
            "micro_batch_size_per_gpu": self.global_batch, "pipeline_stages": 1,
            "gradient_accumulation_steps": 1, "logging_steps": self.logging_steps,
            "steps_per_print": self.steps_per_print, "x_axis_examples": self.x_axis_examples,
            "eval_before_first_step": self.eval_before_first_step,
            "eval_datasets": [{"name": self.eval_name, "config": "eval_dataset.toml"}],
            "model": {"type": "wan", "dtype": "bfloat16"},
            "adapter": {"type": "lora", "rank": 32, "dtype": "bfloat16"},
            "optimizer": {"type": "adamw_optimi", "lr": 2e-5},
        }
        for key in ("save_every_n_epochs", "save_every_n_steps", "eval_every_n_epochs",
                    "eval_every_n_steps", "max_steps", "checkpoint_every_n_epochs"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


EvalLoss = Callable[[int], float]


@dataclass
class _Loop:
    cfg: TrainerConfig
    run_dir: Path
    log: TextIO
    writer: Any
    eval_loss: EvalLoss
    stop_after: int | None

    def print(self, line: str) -> None:
        self.log.write(line + "\n")

    def evaluate(self, x: int, step: int) -> None:
        self.print("Running eval")
        mean = self.eval_loss(step)
        for q in _QUANTILES:
            self.writer.add_scalar(f"{self.cfg.eval_name}/loss_quantile_{q:.2f}", mean * (0.5 + q), x)
        self.writer.add_scalar(f"{self.cfg.eval_name}/loss", mean, x)
        self.writer.add_scalar("eval/eval_time_sec", 4.2, x)

    def save_model(self, name: str) -> None:
        self.print(f"Saving model to directory {name}")
        folder = self.run_dir / name
        tiny_safetensors(folder / ADAPTER_FILE)
        (folder / "adapter_config.json").write_text(json.dumps({"r": 32, "lora_alpha": 32}))
        (folder / self.cfg.config_name).write_text(toml.dumps(self.cfg.main_toml(self.run_dir.parent)))

    def save_checkpoint(self, step: int, examples: int, epoch: int) -> None:
        self.print(f"[Torch] Checkpoint global_step{step} is about to be saved!")
        state = self.run_dir / f"global_step{step}"
        state.mkdir(exist_ok=True)
        (state / "client_state.json").write_text(json.dumps({"step": step, "examples": examples,
                                                             "epoch": epoch}))
        (self.run_dir / "latest").write_text(f"global_step{step}")

    def run(self, step: int, examples: int, epoch: int) -> bool:
        """Train from ``step``; True when the run completed, False when it was cut short."""
        cfg = self.cfg
        epoch_loss, num_steps = 0.0, 0
        final_name = f"epoch{cfg.epochs}"
        while True:
            loss = train_loss(step)
            if step % cfg.steps_per_print == 0:
                self.print(f"[2026-08-20 10:00:00,000] [INFO] [logging.py:128:log_dist] [Rank 0] "
                           f"step={step}, skipped=0, lr=[2e-05], mom=[(0.9, 0.99)]")
                self.print(f"steps: {step} loss: {loss:.4f} iter time (s): 3.162 "
                           f"samples/sec: {cfg.global_batch / 3.162:.3f}")
            epoch_loss += loss
            num_steps += 1
            finished_epoch = step % cfg.steps_per_epoch == 0
            checkpointed = saved = False
            if finished_epoch:
                if cfg.checkpoint_every_n_epochs and epoch % cfg.checkpoint_every_n_epochs == 0:
                    self.save_checkpoint(step, examples, epoch + 1)
                    checkpointed = True
                if cfg.save_every_n_epochs and epoch % cfg.save_every_n_epochs == 0:
                    self.save_model(f"epoch{epoch}")
                    saved = True
                if epoch + 1 <= cfg.epochs:
                    self.print(f"Started new epoch: {epoch + 1}")
            x = examples if cfg.x_axis_examples else step
            if step % cfg.logging_steps == 0:
                self.writer.add_scalar("train/loss", loss, x)
            if ((cfg.eval_every_n_steps and step % cfg.eval_every_n_steps == 0)
                    or (finished_epoch and cfg.eval_every_n_epochs and epoch % cfg.eval_every_n_epochs == 0)):
                self.evaluate(x, step)
            if finished_epoch:
                self.writer.add_scalar("train/epoch_loss", epoch_loss / num_steps, epoch)
                epoch_loss, num_steps = 0.0, 0
                if epoch + 1 > cfg.epochs:
                    break
                epoch += 1
            if cfg.save_every_n_steps and step % cfg.save_every_n_steps == 0:
                self.save_model(f"step{step}")
                saved = True
            if step in cfg.checkpoint_steps:
                self.save_checkpoint(step, examples, epoch)
                checkpointed = True
            if cfg.max_steps is not None and step >= cfg.max_steps:
                final_name = f"step{step}"
                break
            if self.stop_after is not None and step >= self.stop_after:
                return False
            step += 1
            examples += cfg.global_batch
        if not checkpointed:
            self.save_checkpoint(step, examples, epoch)
        if not saved:
            self.save_model(final_name)
        self.print("TRAINING COMPLETE!")
        return True


def _open(run_dir: Path, log_path: Path | None, writer_factory: Callable[[str], Any]):
    log_path = log_path or run_dir / "train.log"
    return open(log_path, "a", encoding="utf-8"), writer_factory(str(run_dir))


def replay_run(output_dir: Path, cfg: TrainerConfig, eval_loss: EvalLoss, *,
               name: str = "20260820_10-00-00", stop_after: int | None = None,
               log_path: Path | None = None, caching: bool = True,
               writer_factory: Callable[[str], Any] = ScalarWriter) -> Path:
    """A new run in ``output_dir/name``; ``stop_after`` kills it after that step (a crash
    without a traceback). ``eval_loss(step)`` gives the mean eval loss at each eval.
    Returns the run folder; the console log is ``train.log`` in it unless ``log_path``."""
    run_dir = output_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / cfg.config_name).write_text(toml.dumps(cfg.main_toml(output_dir)))
    (run_dir / "dataset.toml").write_text(toml.dumps({"resolutions": [512], "directory": [
        {"path": str(output_dir / "dataset"), "num_repeats": 1}]}))
    log, writer = _open(run_dir, log_path, writer_factory)
    try:
        if caching:
            log.write(f"caching latents: {output_dir / 'dataset'}\ncaching latents: (1.0, 1)\n"
                      "caching text embeddings: (1.0, 1)\n")
        log.write(f"Global batch size = {cfg.global_batch}\n")
        loop = _Loop(cfg, run_dir, log, writer, eval_loss, stop_after)
        if cfg.eval_before_first_step:
            loop.evaluate(0, 0)
        loop.run(1, cfg.global_batch, 1)
    finally:
        writer.close()
        log.close()
    return run_dir


def resume_run(run_dir: Path, cfg: TrainerConfig, eval_loss: EvalLoss, *, stop_after: int | None = None,
               log_path: Path | None = None,
               writer_factory: Callable[[str], Any] = ScalarWriter) -> None:
    """``--resume_from_checkpoint``: continue ``run_dir`` from its newest resume state."""
    latest = (run_dir / "latest").read_text().strip()
    state = json.loads((run_dir / latest / "client_state.json").read_text())
    step = state["step"] + 1
    log, writer = _open(run_dir, log_path, writer_factory)
    try:
        log.write(f"Global batch size = {cfg.global_batch}\n")
        log.write(f"Resuming training from checkpoint. Resuming at epoch: {state['epoch']}, step: {step}\n")
        _Loop(cfg, run_dir, log, writer, eval_loss, stop_after).run(
            step, state["examples"] + cfg.global_batch, state["epoch"])
    finally:
        writer.close()
        log.close()
