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

from pistachio_tui.config import env_override
from pistachio_tui.training.buckets import (
    Bucket,
    BucketPlan,
    BucketSettings,
    MediaShape,
    plan_buckets,
    repeats_to_keep_all,
)
from pistachio_tui.training.dataset import MediaItem, PreparedDataset, build_dataset, inspect_dataset, split_names
from pistachio_tui.training.errors import DatasetProblem, TrainingError
from pistachio_tui.training.modelpaths import ModelPaths, find_model_paths
from pistachio_tui.training.presets import GPUS, GpuPreset, TrainingPreset, get_preset

__all__ = ["PreparedRun", "RunPlan", "prepare_run", "plan_run", "build_configs", "check_main_config",
           "launch_command", "choose_frame_buckets"]

EVAL_NAME = "eval"
#: Smallest number of global batches per epoch worth an eval and a save.
_MIN_BATCHES_PER_EPOCH = 4
#: Above this many repeats, keeping every image costs more than dropping a few.
_MAX_REPEATS = 32
#: Warm-up is this share of the run's steps, at most upstream's common 100.
_WARMUP_SHARE = 0.05
_MAX_WARMUP = 100
#: Video frame buckets Wan accepts (4k + 1 frames), shortest first.
_WAN_FRAME_LADDER = (17, 33, 49, 65, 81)
#: The trainer evaluates at nine timestep quantiles; a forward pass costs about a third of a step.
_EVAL_PASSES = 9
_FORWARD_SHARE = 1 / 3


@dataclass(frozen=True)
class RunPlan:
    """What the trainer will do with this dataset and preset, computed as it does."""
    train: BucketPlan
    eval: BucketPlan
    num_repeats: int
    eval_repeats: int
    global_batch: int
    eval_global_batch: int
    num_gpus: int
    epochs: int
    warmup_steps: int
    frame_buckets: tuple[int, ...]
    #: Rough seconds per epoch (training) and per eval pass on the chosen GPU(s).
    epoch_seconds: float
    eval_seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def steps_per_epoch(self) -> int:
        return self.train.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def duration_s(self) -> float:
        return self.epochs * (self.epoch_seconds + self.eval_seconds) + self.eval_seconds


@dataclass(frozen=True)
class PreparedRun:
    out_dir: Path
    dataset: PreparedDataset
    preset: TrainingPreset
    plan: RunPlan
    main_toml: Path
    dataset_toml: Path
    eval_toml: Path
    #: Run from the diffusion-pipe checkout.
    launch_command: str
    #: Resume the newest run of output_dir; add a run folder name to pick another.
    resume_command: str
    warnings: list[str] = field(default_factory=list)
    model_paths: ModelPaths = field(default_factory=ModelPaths)


def launch_command(config: Path, gpu: str | GpuPreset, *, num_gpus: int = 1, resume: bool | str = False) -> str:
    """The exact ``deepspeed`` command; NCCL variables only for consumer cards without P2P.

    ``resume=True`` resumes the newest run; a string names the run folder.
    """
    card = gpu if isinstance(gpu, GpuPreset) else GPUS[gpu]
    prefix = 'NCCL_P2P_DISABLE="1" NCCL_IB_DISABLE="1" ' if card.needs_nccl_workaround else ""
    cmd = f"{prefix}deepspeed --num_gpus={num_gpus} train.py --deepspeed --config {shlex.quote(str(config))}"
    if resume is True:
        cmd += " --resume_from_checkpoint"
    elif resume:
        cmd += f' --resume_from_checkpoint "{resume}"'
    return cmd


def _shapes(items: list[MediaItem], framerate: float | None) -> tuple[list[MediaShape], list[str]]:
    shapes, unknown = [], []
    for item in items:
        if item.size is None:
            unknown.append(item.path.name)
        elif item.is_video:
            if item.seconds is None or not framerate:
                unknown.append(item.path.name)
            else:
                shapes.append(MediaShape(item.path.name, *item.size, int(item.seconds * framerate)))
        else:
            shapes.append(MediaShape(item.path.name, *item.size))
    return shapes, unknown


def choose_frame_buckets(shapes: list[MediaShape], max_frames: int) -> tuple[tuple[int, ...], list[str]]:
    """Frame buckets that fit the clips: for each clip the longest Wan length (4k + 1) it
    covers, up to what the GPU holds; ``[1]`` alone would drop every video."""
    notes: list[str] = []
    lengths = [s.frames for s in shapes if s.frames > 1]
    if not lengths:
        return (1,), notes
    ladder = [f for f in _WAN_FRAME_LADDER if f <= max_frames] or [_WAN_FRAME_LADDER[0]]
    chosen = {max((f for f in ladder if f <= n), default=0) for n in lengths} - {0}
    short = [n for n in lengths if n < ladder[0]]
    if short:
        notes.append(f"{len(short)} clips are shorter than {ladder[0]} frames (the shortest frame bucket) and "
                     "will be skipped by the trainer — use longer clips")
    if any(n > max(chosen, default=0) for n in lengths):
        notes.append(f"clips longer than {max(chosen, default=ladder[0])} frames are cut to that length "
                     f"(video_clip_mode = single_beginning); longer buckets do not fit in this GPU's memory")
    return tuple(sorted(chosen | {1})), notes


def _settings(preset: TrainingPreset, frame_buckets: tuple[int, ...]) -> BucketSettings:
    m = preset.model
    return BucketSettings(resolutions=(preset.resolution.value,), frame_buckets=frame_buckets,
                          round_to=m.round_to, framerate=m.framerate)


def _group_counts(shapes: list[MediaShape], settings: BucketSettings) -> list[int]:
    return [b.files for b in plan_buckets(shapes, settings, num_repeats=1, global_batch=1).buckets]


def _auto_repeats(shapes: list[MediaShape], settings: BucketSettings, global_batch: int) -> int:
    counts = _group_counts(shapes, settings)
    at_least = max(1, math.ceil(_MIN_BATCHES_PER_EPOCH * global_batch / max(sum(counts), 1)))
    keep_all = repeats_to_keep_all(counts, global_batch, at_least=at_least)
    return keep_all if keep_all <= _MAX_REPEATS else at_least


def _seconds_per_item(preset: TrainingPreset, bucket: Bucket) -> float:
    """A rough figure: cost grows with pixels × frames; memory savers cost time."""
    megapixels = bucket.width * bucket.height * bucket.frames / 1e6
    slow = 1.0
    if preset.blocks_to_swap.value:
        slow *= 1.4
    if preset.activation_checkpointing.value:
        slow *= 1.25
    return preset.model.seconds_per_megapixel * megapixels * slow / preset.gpu.speed


def plan_run(preset: TrainingPreset, train: list[MediaItem], held: list[MediaItem], *, epochs: int,
             num_gpus: int = 1, num_repeats: int | None = None, eval_repeats: int | None = None) -> RunPlan:
    """Bucket the split as the trainer will, choose repeats and warm-up, estimate the duration.

    Raises :class:`DatasetProblem` when the trainer would stop with "Processed dataset was
    empty" (after caching and model loading), saying how to fix it.
    """
    c = preset.choices()
    global_batch = c["micro_batch"].value * c["grad_accum"].value * num_gpus
    # prepare writes eval_micro_batch_size_per_gpu = 1 and eval_gradient_accumulation_steps = 1.
    eval_batch = num_gpus
    train_shapes, unknown = _shapes(train, preset.model.framerate)
    eval_shapes, eval_unknown = _shapes(held, preset.model.framerate)
    notes = []
    frame_buckets: tuple[int, ...] = (1,)
    if preset.model.video:
        frame_buckets, frame_notes = choose_frame_buckets(train_shapes + eval_shapes, preset.max_frames)
        notes += frame_notes
    if unknown or eval_unknown:
        names = unknown + eval_unknown
        notes.append(f"{len(names)} files could not be measured and are left out of these figures "
                     f"(e.g. {names[0]})")
    settings = _settings(preset, frame_buckets)
    repeats = num_repeats or _auto_repeats(train_shapes, settings, global_batch)
    eval_reps = eval_repeats or repeats_to_keep_all(_group_counts(eval_shapes, settings), eval_batch)
    train_plan = plan_buckets(train_shapes, settings, num_repeats=repeats, global_batch=global_batch)
    eval_plan = plan_buckets(eval_shapes, settings, num_repeats=eval_reps, global_batch=eval_batch)
    if train_plan.empty:
        raise DatasetProblem(
            f"every training bucket rounds down to nothing with a global batch of {global_batch} "
            f"(micro batch × gradient accumulation × {num_gpus} GPU{'s' if num_gpus > 1 else ''}): the trainer "
            f"would stop with 'Processed dataset was empty' after caching — raise num_repeats to "
            f"{_auto_repeats(train_shapes, settings, global_batch)} or lower the batch")
    if eval_shapes and eval_plan.empty:
        fix = repeats_to_keep_all(_group_counts(eval_shapes, settings), eval_batch)
        raise DatasetProblem(
            f"the eval set ({len(eval_shapes)} files in {len(eval_plan.buckets)} size buckets) rounds down to "
            f"nothing on {num_gpus} GPUs: every eval batch needs one item per GPU, so the trainer would stop "
            f"with 'Processed dataset was empty' after caching and model loading — set the eval num_repeats "
            f"to {fix} (--eval-repeats {fix}), hold out more images, or train on fewer GPUs")
    if train_plan.dropped:
        notes.append(f"{train_plan.dropped} of {train_plan.items} training items are dropped each epoch "
                     "(buckets rounded down to the global batch; see the buckets above)")
    if eval_plan.dropped:
        notes.append(f"{eval_plan.dropped} of {eval_plan.items} eval items are dropped (buckets rounded down "
                     f"to {eval_batch}, one per GPU)")
    total = train_plan.steps_per_epoch * epochs
    warmup = min(_MAX_WARMUP, max(1, round(total * _WARMUP_SHARE)))
    epoch_s = sum(b.kept * _seconds_per_item(preset, b) for b in train_plan.buckets) / num_gpus
    eval_s = sum(b.kept * _seconds_per_item(preset, b) for b in eval_plan.buckets) * _EVAL_PASSES * \
        _FORWARD_SHARE / num_gpus
    return RunPlan(train_plan, eval_plan, repeats, eval_reps, global_batch, eval_batch, num_gpus, epochs, warmup,
                   frame_buckets, epoch_s, eval_s, notes)


def build_configs(preset: TrainingPreset, plan: RunPlan, *, train_dir: Path, eval_dir: Path,
                  dataset_toml: Path, eval_toml: Path, output_dir: Path,
                  model_paths: ModelPaths | None = None, wandb: str | None = None) -> tuple[dict, dict, dict, list[str]]:
    """Main, dataset and eval configs as dicts, plus warnings for the user.

    ``wandb`` is the run name for Weights & Biases (None: TensorBoard only).
    """
    warnings: list[str] = []
    c = preset.choices()
    m = preset.model
    dataset_common: dict[str, Any] = {
        "resolutions": [c["resolution"].value],
        "enable_ar_bucket": True, "min_ar": 0.5, "max_ar": 2.0, "num_ar_buckets": 7,
    }
    if m.video:
        dataset_common["frame_buckets"] = list(plan.frame_buckets)
    dataset = {**dataset_common, "directory": [{"path": str(train_dir), "num_repeats": plan.num_repeats}]}
    eval_cfg = {**dataset_common, "directory": [{"path": str(eval_dir), "num_repeats": plan.eval_repeats}]}
    model: dict[str, Any] = {"type": m.model_type}
    keys = dict(model_paths.keys) if model_paths else {}
    if m.path_key not in keys:
        keys[m.path_key] = f"/CHANGE/ME/{m.path_hint}"
        if not any(line.startswith(f"{m.path_key}:") for line in (model_paths.missing if model_paths else [])):
            warnings.append(f"set [model] {m.path_key} in the main TOML to your {m.name} weights")
    model.update(keys)
    model["dtype"] = "bfloat16"
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
        "epochs": plan.epochs,
        "micro_batch_size_per_gpu": c["micro_batch"].value,
        "pipeline_stages": 1,
        "gradient_accumulation_steps": c["grad_accum"].value,
        "gradient_clipping": 1.0,
        "warmup_steps": plan.warmup_steps,
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
    if wandb is not None:
        # The key stays out of the file (the trainer copies it into every save): an empty key
        # makes wandb.login read WANDB_API_KEY from the environment.
        main["monitoring"] = {"enable_wandb": True, "wandb_api_key": "", "wandb_tracker_name": "pistachio",
                              "wandb_run_name": wandb}
        if not env_override("WANDB_API_KEY"):
            warnings.append("--wandb: set WANDB_API_KEY in the environment of the training process")
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


def prepare_run(dataset: Path, out: Path, *, trigger: str, gpu: str | GpuPreset, model: str, epochs: int = 30,
                num_gpus: int = 1, link: bool = True, seed: str = "pistachio",
                num_repeats: int | None = None, eval_repeats: int | None = None,
                comfy_models: Path | None = None, official_model: Path | None = None,
                wandb: str | None = None) -> PreparedRun:
    """Split ``dataset`` into ``out/data``, plan buckets and steps, write the three TOMLs,
    return commands and reasons. Raises :class:`DatasetProblem` before anything is written
    when the trainer would find no data."""
    preset = get_preset(gpu, model)
    out = out.expanduser().resolve()
    source = dataset.expanduser().resolve()
    report = inspect_dataset(source)
    usable = {i.path.name: i for i in report.items if not i.problem}
    train_names, eval_names = split_names(list(usable), seed=seed)
    plan = plan_run(preset, [usable[n] for n in train_names], [usable[n] for n in eval_names], epochs=epochs,
                    num_gpus=num_gpus, num_repeats=num_repeats, eval_repeats=eval_repeats)
    out.mkdir(parents=True, exist_ok=True)
    prepared = build_dataset(source, out / "data", trigger, seed=seed, link=link, report=report)
    dataset_toml, eval_toml = out / "dataset.toml", out / "eval_dataset.toml"
    card = preset.gpu.key
    main_toml = out / f"{card}_{model}.toml"
    paths = find_model_paths(model, comfy_models=comfy_models, official=official_model)
    main, ds, ev, warnings = build_configs(
        preset, plan, train_dir=prepared.train_dir, eval_dir=prepared.eval_dir, dataset_toml=dataset_toml,
        eval_toml=eval_toml, output_dir=out / "runs", model_paths=paths, wandb=wandb)
    warnings = prepared.report.warnings + _caption_warnings(prepared) + plan.notes + paths.missing + warnings
    _write_toml(dataset_toml, ds)
    _write_toml(eval_toml, ev)
    problems = check_main_config(_write_toml(main_toml, main))
    if problems:
        raise TrainingError(f"generated {main_toml.name} has problems: {'; '.join(problems)} — please report this")
    return PreparedRun(out, prepared, preset, plan, main_toml, dataset_toml, eval_toml,
                       launch_command(main_toml, preset.gpu, num_gpus=num_gpus),
                       launch_command(main_toml, preset.gpu, num_gpus=num_gpus, resume=True), warnings, paths)


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
