"""GPU × model presets for DiffusionPipe LoRA runs, each setting with its reason.

Cards people rent fall into memory classes — 24 GB (RTX 3090, 4090), 32 GB
(5090), 48 GB (A6000, A40, L40S), 80 GB (A100, H100), 141 GB (H200) — and
each class has its settings per model. The table is data
(:data:`PRESET_TABLE`); :func:`get_preset` pairs each value
with a sentence a person can read in the Training screen or the CLI, so a
user who changes a setting knows what it was protecting against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["GpuPreset", "ModelFamily", "Choice", "TrainingPreset", "GPUS", "MODELS", "MEMORY_CLASSES",
           "PRESET_TABLE", "get_preset", "gpu_from_nvml", "detect_gpu"]


@dataclass(frozen=True)
class GpuPreset:
    key: str
    name: str
    vram_gb: int
    #: RTX 4000/5000-series cards have no peer-to-peer path: NCCL's P2P and InfiniBand must be off.
    needs_nccl_workaround: bool
    #: Rough training speed relative to an H100 (for duration estimates only).
    speed: float = 1.0
    #: What RunPod's GPU list calls the card, to look its price up.
    runpod_name: str = ""

    @property
    def memory_class(self) -> int:
        """The preset row this card uses: the largest class that fits in its memory."""
        return max((c for c in MEMORY_CLASSES if c <= self.vram_gb), default=MEMORY_CLASSES[0])


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
    #: Upstream ``pixels_round_to_multiple`` and ``framerate`` of the model's pipeline.
    round_to: int = 16
    framerate: float | None = None
    #: Rough seconds to train on one 1-megapixel image on an H100 (duration estimates only).
    seconds_per_megapixel: float = 1.0


#: Memory sizes people rent, in GB; each has its own settings per model.
MEMORY_CLASSES = (24, 32, 48, 80, 141)

GPUS: dict[str, GpuPreset] = {
    "3090": GpuPreset("3090", "NVIDIA RTX 3090 24 GB", 24, False, 0.3, "RTX 3090"),
    "4090": GpuPreset("4090", "NVIDIA RTX 4090 24 GB", 24, True, 0.5, "RTX 4090"),
    "5090": GpuPreset("5090", "NVIDIA RTX 5090 32 GB", 32, True, 0.65, "RTX 5090"),
    "a6000": GpuPreset("a6000", "NVIDIA RTX A6000 48 GB", 48, False, 0.4, "RTX A6000"),
    "a40": GpuPreset("a40", "NVIDIA A40 48 GB", 48, False, 0.38, "A40"),
    "l40s": GpuPreset("l40s", "NVIDIA L40S 48 GB", 48, False, 0.55, "L40S"),
    "a100": GpuPreset("a100", "NVIDIA A100 80 GB", 80, False, 0.6, "A100 80GB"),
    "h100": GpuPreset("h100", "NVIDIA H100 80 GB", 80, False, 1.0, "H100 80GB"),
    "h200": GpuPreset("h200", "NVIDIA H200 141 GB", 141, False, 1.15, "H200"),
}

MODELS: dict[str, ModelFamily] = {
    "wan14b": ModelFamily("wan14b", "Wan 2.1 T2V 14B", "wan", "ckpt_path", "Wan2.1-T2V-14B",
                          True, True, True, {"timestep_sample_method": "logit_normal"},
                          round_to=16, framerate=16, seconds_per_megapixel=1.6),
    "flux": ModelFamily("flux", "Flux.1 dev", "flux", "diffusers_path", "FLUX.1-dev",
                        True, True, False, {"flux_shift": True}, seconds_per_megapixel=0.9),
    "sdxl": ModelFamily("sdxl", "SDXL 1.0", "sdxl", "checkpoint_path", "sd_xl_base_1.0.safetensors",
                        False, False, False, {"unet_lr": 4e-5, "text_encoder_1_lr": 2e-5,
                                              "text_encoder_2_lr": 2e-5}, seconds_per_megapixel=0.35),
}


def _row(resolution: int, micro_batch: int, grad_accum: int, activation_checkpointing: Any,
         blocks_to_swap: int | None, transformer_dtype: str | None, optimizer: str, lr: float,
         max_frames: int = 1) -> dict[str, Any]:
    return dict(resolution=resolution, micro_batch=micro_batch, grad_accum=grad_accum,
                activation_checkpointing=activation_checkpointing, blocks_to_swap=blocks_to_swap,
                transformer_dtype=transformer_dtype, optimizer=optimizer, lr=lr, rank=32, max_frames=max_frames)


_K, _A = "AdamW8bitKahan", "adamw_optimi"
# (memory class GB, model) → settings; max_frames is the longest video frame bucket that fits.
PRESET_TABLE: dict[tuple[int, str], dict[str, Any]] = {
    (24, "wan14b"): _row(512, 1, 4, "unsloth", 32, "float8", _K, 2e-5, 33),
    (32, "wan14b"): _row(512, 1, 4, "unsloth", 20, "float8", _K, 2e-5, 33),
    (48, "wan14b"): _row(768, 1, 4, True, None, "float8", _A, 2e-5, 49),
    (80, "wan14b"): _row(768, 2, 2, True, None, "bfloat16", _A, 2e-5, 81),
    (141, "wan14b"): _row(1024, 4, 1, True, None, "bfloat16", _A, 2e-5, 81),
    (24, "flux"): _row(768, 1, 4, True, None, "float8", _K, 1e-4),
    (32, "flux"): _row(1024, 1, 4, True, None, "float8", _K, 1e-4),
    (48, "flux"): _row(1024, 1, 4, True, None, "bfloat16", _A, 1e-4),
    (80, "flux"): _row(1024, 2, 2, True, None, "bfloat16", _A, 1e-4),
    (141, "flux"): _row(1024, 4, 1, True, None, "bfloat16", _A, 1e-4),
    (24, "sdxl"): _row(1024, 1, 4, True, None, None, _K, 4e-5),
    (32, "sdxl"): _row(1024, 2, 2, True, None, None, _A, 4e-5),
    (48, "sdxl"): _row(1024, 4, 1, True, None, None, _A, 4e-5),
    (80, "sdxl"): _row(1024, 4, 1, True, None, None, _A, 4e-5),
    (141, "sdxl"): _row(1024, 8, 1, False, None, None, _A, 4e-5),
}


def gpu_from_nvml(name: str | None, memory_bytes: int | None) -> GpuPreset | None:
    """The preset for a card NVML reports: by its name, else by its memory size."""
    if name:
        compact = name.lower().replace(" ", "")
        for key, gpu in GPUS.items():
            if key in compact:
                return gpu
    if not memory_bytes:
        return None
    gb = round(memory_bytes / 1024 ** 3)
    return GpuPreset("detected", name or f"GPU with {gb} GB", gb, False, 0.5)


def detect_gpu(nvml: Any = None) -> tuple[GpuPreset, int] | None:
    """This machine's first GPU as a preset, and how many GPUs there are; None without NVML."""
    from pistachio_tui.gpu.nvml import NvmlReader, NvmlUnavailable

    reader = NvmlReader(nvml)
    try:
        reader.open()
        samples = reader.read()
    except NvmlUnavailable:
        return None
    finally:
        reader.close()
    if not samples:
        return None
    preset = gpu_from_nvml(samples[0].name, samples[0].memory_total)
    return (preset, len(samples)) if preset else None


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
    #: Longest video frame bucket that fits (1 for image models).
    max_frames: int = 1

    def choices(self) -> dict[str, Choice]:
        """Every setting by name, in display order."""
        names = ("resolution", "micro_batch", "grad_accum", "activation_checkpointing",
                 "blocks_to_swap", "transformer_dtype", "optimizer", "lr", "rank")
        return {n: getattr(self, n) for n in names}


def get_preset(gpu: str | GpuPreset, model: str) -> TrainingPreset:
    """The preset for a GPU key (see :data:`GPUS`) or a detected card, and a model key
    (``wan14b``/``flux``/``sdxl``); the settings come from the card's memory class."""
    try:
        g = gpu if isinstance(gpu, GpuPreset) else GPUS[gpu]
        m, row = MODELS[model], PRESET_TABLE[(g.memory_class, model)]
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
        max_frames=row["max_frames"],
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
