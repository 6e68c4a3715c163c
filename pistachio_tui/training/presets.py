"""GPU × model presets for DiffusionPipe LoRA runs, each setting with its reason.

The table is data (:data:`PRESET_TABLE`); :func:`get_preset` pairs each value
with a sentence a person can read in the Training screen or the CLI, so a
user who changes a setting knows what it was protecting against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["GpuPreset", "ModelFamily", "Choice", "TrainingPreset", "GPUS", "MODELS",
           "PRESET_TABLE", "get_preset"]


@dataclass(frozen=True)
class GpuPreset:
    key: str
    name: str
    vram_gb: int
    #: RTX 4000-series cards need NCCL's P2P and InfiniBand paths disabled.
    needs_nccl_workaround: bool


@dataclass(frozen=True)
class ModelFamily:
    key: str
    name: str
    #: DiffusionPipe's ``[model] type``.
    model_type: str
    #: ``[model]`` key that points at the weights, and a placeholder for it.
    path_key: str
    path_hint: str
    supports_block_swap: bool
    supports_float8: bool
    video: bool
    extra_model_keys: dict[str, Any]


GPUS: dict[str, GpuPreset] = {
    "h200": GpuPreset("h200", "NVIDIA H200 141 GB", 141, False),
    "a100": GpuPreset("a100", "NVIDIA A100 80 GB", 80, False),
    "4090": GpuPreset("4090", "NVIDIA RTX 4090 24 GB", 24, True),
}

MODELS: dict[str, ModelFamily] = {
    "wan14b": ModelFamily("wan14b", "Wan 2.1 T2V 14B", "wan", "ckpt_path", "Wan2.1-T2V-14B",
                          True, True, True, {"timestep_sample_method": "logit_normal"}),
    "flux": ModelFamily("flux", "Flux.1 dev", "flux", "diffusers_path", "FLUX.1-dev",
                        True, True, False, {"flux_shift": True}),
    "sdxl": ModelFamily("sdxl", "SDXL 1.0", "sdxl", "checkpoint_path", "sd_xl_base_1.0.safetensors",
                        False, False, False, {"unet_lr": 4e-5, "text_encoder_1_lr": 2e-5,
                                              "text_encoder_2_lr": 2e-5}),
}

# (gpu, model) → resolution, micro batch, grad accumulation, activation checkpointing,
# blocks_to_swap (None = unset), transformer_dtype (None = not applicable), optimizer, lr, rank.
PRESET_TABLE: dict[tuple[str, str], dict[str, Any]] = {
    ("h200", "wan14b"): dict(resolution=1024, micro_batch=4, grad_accum=1, activation_checkpointing=True,
                             blocks_to_swap=None, transformer_dtype="bfloat16", optimizer="adamw_optimi", lr=2e-5, rank=32),
    ("a100", "wan14b"): dict(resolution=768, micro_batch=2, grad_accum=2, activation_checkpointing=True,
                             blocks_to_swap=None, transformer_dtype="bfloat16", optimizer="adamw_optimi", lr=2e-5, rank=32),
    ("4090", "wan14b"): dict(resolution=512, micro_batch=1, grad_accum=4, activation_checkpointing="unsloth",
                             blocks_to_swap=32, transformer_dtype="float8", optimizer="AdamW8bitKahan", lr=2e-5, rank=32),
    ("h200", "flux"): dict(resolution=1024, micro_batch=4, grad_accum=1, activation_checkpointing=True,
                           blocks_to_swap=None, transformer_dtype="bfloat16", optimizer="adamw_optimi", lr=1e-4, rank=32),
    ("a100", "flux"): dict(resolution=1024, micro_batch=2, grad_accum=2, activation_checkpointing=True,
                           blocks_to_swap=None, transformer_dtype="bfloat16", optimizer="adamw_optimi", lr=1e-4, rank=32),
    ("4090", "flux"): dict(resolution=768, micro_batch=1, grad_accum=4, activation_checkpointing=True,
                           blocks_to_swap=None, transformer_dtype="float8", optimizer="AdamW8bitKahan", lr=1e-4, rank=32),
    ("h200", "sdxl"): dict(resolution=1024, micro_batch=8, grad_accum=1, activation_checkpointing=False,
                           blocks_to_swap=None, transformer_dtype=None, optimizer="adamw_optimi", lr=4e-5, rank=32),
    ("a100", "sdxl"): dict(resolution=1024, micro_batch=4, grad_accum=1, activation_checkpointing=True,
                           blocks_to_swap=None, transformer_dtype=None, optimizer="adamw_optimi", lr=4e-5, rank=32),
    ("4090", "sdxl"): dict(resolution=1024, micro_batch=1, grad_accum=4, activation_checkpointing=True,
                           blocks_to_swap=None, transformer_dtype=None, optimizer="AdamW8bitKahan", lr=4e-5, rank=32),
}


@dataclass(frozen=True)
class Choice:
    """One setting: the value written to the TOML (None = left out) and why."""
    value: Any
    why: str


@dataclass(frozen=True)
class TrainingPreset:
    gpu: GpuPreset
    model: ModelFamily
    resolution: Choice
    micro_batch: Choice
    grad_accum: Choice
    activation_checkpointing: Choice
    blocks_to_swap: Choice
    transformer_dtype: Choice
    optimizer: Choice
    lr: Choice
    rank: Choice

    def choices(self) -> dict[str, Choice]:
        """Every setting by name, in display order."""
        names = ("resolution", "micro_batch", "grad_accum", "activation_checkpointing",
                 "blocks_to_swap", "transformer_dtype", "optimizer", "lr", "rank")
        return {n: getattr(self, n) for n in names}


def get_preset(gpu: str, model: str) -> TrainingPreset:
    """The preset for a GPU key (``h200``/``a100``/``4090``) and model key (``wan14b``/``flux``/``sdxl``)."""
    try:
        g, m, row = GPUS[gpu], MODELS[model], PRESET_TABLE[(gpu, model)]
    except KeyError:
        raise ValueError(f"no preset for GPU {gpu!r} and model {model!r} — GPUs: {', '.join(GPUS)}; "
                         f"models: {', '.join(MODELS)}") from None
    mb, ga = row["micro_batch"], row["grad_accum"]
    return TrainingPreset(
        g, m,
        resolution=Choice(row["resolution"], _why_resolution(g, m, row["resolution"])),
        micro_batch=Choice(mb, f"{mb} per forward pass fits in {g.vram_gb} GB for {m.name} at "
                               f"{row['resolution']} px with the memory settings below"),
        grad_accum=Choice(ga, f"effective batch {mb * ga} per optimizer step: "
                              + ("accumulating gives a steadier step without more VRAM" if ga > 1
                                 else "the micro batch is already large enough")),
        activation_checkpointing=Choice(row["activation_checkpointing"],
                                        _why_checkpointing(row["activation_checkpointing"], g)),
        blocks_to_swap=Choice(row["blocks_to_swap"], _why_swap(row["blocks_to_swap"], g, m)),
        transformer_dtype=Choice(row["transformer_dtype"], _why_dtype(row["transformer_dtype"], g, m)),
        optimizer=Choice(row["optimizer"], _why_optimizer(row["optimizer"])),
        lr=Choice(row["lr"], _why_lr(row["lr"], m)),
        rank=Choice(row["rank"], f"rank {row['rank']}: enough capacity for a character or style; "
                                 "the trainer forces alpha = rank, so no alpha is written"),
    )


def _why_resolution(g: GpuPreset, m: ModelFamily, res: int) -> str:
    if res < 768:
        return f"{res} px keeps activations small enough for {g.vram_gb} GB; raise it only with more block swap"
    return f"{res} px: {g.vram_gb} GB has room for {m.name}'s detail at this size"


def _why_checkpointing(value: Any, g: GpuPreset) -> str:
    if value == "unsloth":
        return "'unsloth' also offloads the checkpointed activations to RAM: the least VRAM, slightly slower"
    if value:
        return "recomputes activations during backward: far less VRAM for about a quarter more time"
    return f"off: {g.vram_gb} GB holds all activations, so skip the recompute and train fastest"


def _why_swap(value: int | None, g: GpuPreset, m: ModelFamily) -> str:
    if value:
        return (f"{value} blocks stay in host RAM and are swapped in per step: {m.name} does not fit in "
                f"{g.vram_gb} GB otherwise (top-level key; needs pipeline_stages = 1; slower)")
    if not m.supports_block_swap:
        return f"not available for {m.name}, and not needed"
    return f"not needed: the model fits in {g.vram_gb} GB, and swapping costs speed"


def _why_dtype(value: str | None, g: GpuPreset, m: ModelFamily) -> str:
    if value is None:
        return f"{m.name} has no float8 transformer option; it trains in bfloat16"
    if value == "float8":
        return f"frozen base weights stored in fp8: halves their VRAM so {m.name} fits in {g.vram_gb} GB; the LoRA still trains in bf16"
    return f"full bfloat16 base weights: best quality, and {g.vram_gb} GB holds them"


def _why_optimizer(value: str) -> str:
    if value == "AdamW8bitKahan":
        return "8-bit optimizer states with Kahan summation: less VRAM than AdamW at nearly the same quality"
    return "AdamW from optimi, upstream's default: Kahan summation keeps bf16 weights accurate"


def _why_lr(value: float, m: ModelFamily) -> str:
    if m.key == "sdxl":
        return f"{value:g} for the UNet with 2e-5 for both text encoders, as upstream's SDXL docs suggest"
    if m.key == "flux":
        return f"{value:g}: a common Flux LoRA rate at rank 32; halve it if samples overfit early"
    return f"{value:g}: upstream's example rate for {m.name} LoRAs; eval loss will tell if it is too high"
