"""Prepare a DiffusionPipe LoRA run: dataset split, three TOMLs, the launch command.

:func:`prepare_run` writes into ``out``::

    out/data/train/   images + captions (trigger first)    ← dataset.toml
    out/data/eval/    the held-out 20 %                     ← eval_dataset.toml
    out/<gpu>_<model>.toml                                   main config
    out/runs/                                                output_dir (one folder per run)

Every written TOML is parsed back and checked against the traps the trainer
enforces (:func:`check_main_config`), so a config we hand out starts.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import toml

from pistachio_tui.training.dataset import PreparedDataset, build_dataset
from pistachio_tui.training.errors import TrainingError
from pistachio_tui.training.presets import GPUS, TrainingPreset, get_preset

__all__ = ["PreparedRun", "prepare_run", "build_configs", "check_main_config", "launch_command"]

EVAL_NAME = "eval"
#: Smallest number of training examples per epoch, in global batches, so that
#: aspect-ratio buckets are not rounded down to nothing ("Processed dataset was empty").
_MIN_BATCHES_PER_EPOCH = 4


@dataclass(frozen=True)
class PreparedRun:
    out_dir: Path
    dataset: PreparedDataset
    preset: TrainingPreset
    main_toml: Path
    dataset_toml: Path
    eval_toml: Path
    #: Run from the diffusion-pipe checkout.
    launch_command: str
    #: Resume the newest run of output_dir; add a run folder name to pick another.
    resume_command: str
    warnings: list[str] = field(default_factory=list)


def launch_command(config: Path, gpu: str, *, num_gpus: int = 1, resume: bool | str = False) -> str:
    """The exact ``deepspeed`` command; NCCL variables only for RTX 4000-series GPUs.

    ``resume=True`` resumes the newest run; a string names the run folder.
    """
    prefix = 'NCCL_P2P_DISABLE="1" NCCL_IB_DISABLE="1" ' if GPUS[gpu].needs_nccl_workaround else ""
    cmd = f"{prefix}deepspeed --num_gpus={num_gpus} train.py --deepspeed --config {shlex.quote(str(config))}"
    if resume is True:
        cmd += " --resume_from_checkpoint"
    elif resume:
        cmd += f' --resume_from_checkpoint "{resume}"'
    return cmd


def _num_repeats(n_items: int, global_batch: int) -> int:
    return max(1, math.ceil(_MIN_BATCHES_PER_EPOCH * global_batch / max(n_items, 1)))


def build_configs(preset: TrainingPreset, *, train_dir: Path, eval_dir: Path, dataset_toml: Path,
                  eval_toml: Path, output_dir: Path, n_train: int, epochs: int = 30,
                  num_gpus: int = 1, model_path: str | None = None) -> tuple[dict, dict, dict, list[str]]:
    """Main, dataset and eval configs as dicts, plus warnings for the user."""
    warnings: list[str] = []
    c = preset.choices()
    m = preset.model
    global_batch = c["micro_batch"].value * c["grad_accum"].value * num_gpus
    dataset_common: dict[str, Any] = {
        "resolutions": [c["resolution"].value],
        "enable_ar_bucket": True, "min_ar": 0.5, "max_ar": 2.0, "num_ar_buckets": 7,
    }
    if m.video:
        dataset_common["frame_buckets"] = [1]
    repeats = _num_repeats(n_train, global_batch)
    dataset = {**dataset_common, "directory": [{"path": str(train_dir), "num_repeats": repeats}]}
    eval_cfg = {**dataset_common, "directory": [{"path": str(eval_dir), "num_repeats": 1}]}
    if repeats > 1:
        warnings.append(f"num_repeats = {repeats}: {n_train} training items are few for a global batch "
                        f"of {global_batch}; repeating avoids 'Processed dataset was empty'")
    if model_path is None:
        model_path = f"/CHANGE/ME/{m.path_hint}"
        warnings.append(f"set [model] {m.path_key} in the main TOML to your {m.name} weights")
    model: dict[str, Any] = {"type": m.model_type, m.path_key: model_path, "dtype": "bfloat16"}
    if c["transformer_dtype"].value is not None:
        model["transformer_dtype"] = c["transformer_dtype"].value
    model.update(m.extra_model_keys)
    optimizer: dict[str, Any] = {"type": c["optimizer"].value, "lr": c["lr"].value,
                                 "betas": [0.9, 0.99], "weight_decay": 0.01}
    if c["optimizer"].value == "AdamW8bitKahan":
        optimizer["stabilize"] = False
    else:
        optimizer["eps"] = 1e-8
    main: dict[str, Any] = {
        "output_dir": str(output_dir),
        "dataset": str(dataset_toml),
        "eval_datasets": [{"name": EVAL_NAME, "config": str(eval_toml)}],
        "epochs": epochs,
        "micro_batch_size_per_gpu": c["micro_batch"].value,
        "pipeline_stages": 1,
        "gradient_accumulation_steps": c["grad_accum"].value,
        "gradient_clipping": 1.0,
        "warmup_steps": 100,
        "eval_every_n_epochs": 1,
        "eval_before_first_step": True,
        "eval_micro_batch_size_per_gpu": 1,
        "eval_gradient_accumulation_steps": 1,
        # Every epoch saved so the convergence pick can take any of them.
        "save_every_n_epochs": 1,
        "checkpoint_every_n_minutes": 120,
        "activation_checkpointing": c["activation_checkpointing"].value,
        "partition_method": "parameters",
        "save_dtype": "bfloat16",
        "caching_batch_size": 1,
        "steps_per_print": 1,
    }
    if c["blocks_to_swap"].value:
        main["blocks_to_swap"] = c["blocks_to_swap"].value
    if m.video:
        main["video_clip_mode"] = "single_beginning"
    main["model"] = model
    main["adapter"] = {"type": "lora", "rank": c["rank"].value, "dtype": "bfloat16"}
    main["optimizer"] = optimizer
    return main, dataset, eval_cfg, warnings


def check_main_config(main: dict[str, Any]) -> list[str]:
    """Problems the trainer would refuse or trip over; empty when the config is fine."""
    problems = []
    if not any(k in main for k in ("save_every_n_epochs", "save_every_n_steps", "save_every_n_examples")):
        problems.append("one of save_every_n_epochs / save_every_n_steps / save_every_n_examples is required")
    if "alpha" in main.get("adapter", {}):
        problems.append("[adapter] must not set alpha (the trainer forces alpha = rank)")
    if "blocks_to_swap" in main.get("model", {}):
        problems.append("blocks_to_swap belongs at the top level, not under [model]")
    if main.get("blocks_to_swap"):
        if main.get("pipeline_stages", 1) != 1:
            problems.append("blocks_to_swap needs pipeline_stages = 1")
        if "adapter" not in main:
            problems.append("blocks_to_swap only works for LoRA training (needs [adapter])")
    for i, entry in enumerate(main.get("eval_datasets", [])):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("config"):
            problems.append(f"eval_datasets[{i}] needs both name (the TensorBoard tag) and config")
    for key in ("output_dir", "dataset", "epochs", "model"):
        if key not in main:
            problems.append(f"{key} is missing")
    return problems


def _write_toml(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    path.write_text(toml.dumps(data), encoding="utf-8")
    parsed = toml.load(path)
    if parsed != data:
        raise TrainingError(f"{path.name} did not read back as written — please report this")
    return parsed


def prepare_run(dataset: Path, out: Path, *, trigger: str, gpu: str, model: str, epochs: int = 30,
                num_gpus: int = 1, model_path: str | None = None, link: bool = True,
                seed: str = "pistachio") -> PreparedRun:
    """Split ``dataset`` into ``out/data``, write the three TOMLs, return commands and reasons."""
    preset = get_preset(gpu, model)
    out = out.expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    prepared = build_dataset(dataset.expanduser().resolve(), out / "data", trigger, seed=seed, link=link)
    dataset_toml, eval_toml = out / "dataset.toml", out / "eval_dataset.toml"
    main_toml = out / f"{gpu}_{model}.toml"
    main, ds, ev, warnings = build_configs(
        preset, train_dir=prepared.train_dir, eval_dir=prepared.eval_dir, dataset_toml=dataset_toml,
        eval_toml=eval_toml, output_dir=out / "runs", n_train=len(prepared.train), epochs=epochs,
        num_gpus=num_gpus, model_path=model_path)
    warnings = prepared.report.warnings + _caption_warnings(prepared) + warnings
    _write_toml(dataset_toml, ds)
    _write_toml(eval_toml, ev)
    problems = check_main_config(_write_toml(main_toml, main))
    if problems:
        raise TrainingError(f"generated {main_toml.name} has problems: {'; '.join(problems)} — please report this")
    return PreparedRun(out, prepared, preset, main_toml, dataset_toml, eval_toml,
                       launch_command(main_toml, gpu, num_gpus=num_gpus),
                       launch_command(main_toml, gpu, num_gpus=num_gpus, resume=True), warnings)


def _caption_warnings(prepared: PreparedDataset) -> list[str]:
    report = prepared.report
    out = []
    if report.missing_captions:
        out.append(f"{len(report.missing_captions)} items had no caption file; they were given the trigger "
                   f"word alone (e.g. {report.missing_captions[0]})")
    if report.empty_captions:
        out.append(f"{len(report.empty_captions)} captions were empty; they now hold the trigger word alone")
    if report.unreadable:
        out.append(f"{len(report.unreadable)} unreadable images were left out (e.g. {report.unreadable[0]})")
    return out
