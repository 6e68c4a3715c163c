"""Point a run's ``[model]`` at weights the user already has in a ComfyUI models folder.

What DiffusionPipe loads per model (upstream ``docs/supported_models.md`` and
``models/wan/wan.py``):

- Wan 2.1: ``ckpt_path`` is the official checkpoint folder and must exist —
  it supplies ``config.json``, the VAE (``Wan2.1_VAE.pth``) and the T5
  tokenizer (``google/umt5-xxl/``). The transformer and UMT5 text encoder may
  come from ComfyUI's single files instead: ``transformer_path`` and
  ``llm_path``; then the official folder can be downloaded without them.
- Flux: ``diffusers_path`` is the Diffusers folder; ``transformer_path`` may
  point at a BFL single file such as ComfyUI's ``flux1-dev.safetensors``.
- SDXL: ``checkpoint_path`` is the single ``.safetensors`` checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ModelPaths", "find_model_paths"]

_WAN_DOWNLOAD = ('huggingface-cli download Wan-AI/Wan2.1-T2V-14B --local-dir Wan2.1-T2V-14B '
                 '--exclude "diffusion_pytorch_model*" "models_t5*"')
_FLUX_DOWNLOAD = ('huggingface-cli download black-forest-labs/FLUX.1-dev --local-dir FLUX.1-dev '
                  '--exclude "flux1-dev.safetensors"')

#: (model key, [model] key) → ComfyUI sub-folder and file names, best first.
_COMFY_FILES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("wan14b", "transformer_path"): ("diffusion_models", (
        "wan2.1_t2v_14B_bf16.safetensors", "wan2.1_t2v_14B_fp16.safetensors",
        "wan2.1_t2v_14B_fp8_e4m3fn.safetensors")),
    ("wan14b", "llm_path"): ("text_encoders", ("umt5_xxl_fp16.safetensors", "umt5_xxl_bf16.safetensors")),
    ("flux", "transformer_path"): ("diffusion_models", ("flux1-dev.safetensors",)),
    ("sdxl", "checkpoint_path"): ("checkpoints", ("sd_xl_base_1.0.safetensors",
                                                 "sd_xl_base_1.0_0.9vae.safetensors")),
}
#: Where each ComfyUI file comes from, for the "missing" message.
_COMFY_SOURCES = {
    "diffusion_models/wan2.1": "Comfy-Org/Wan_2.1_ComfyUI_repackaged (split_files/diffusion_models/)",
    "text_encoders/umt5": "Comfy-Org/Wan_2.1_ComfyUI_repackaged (split_files/text_encoders/)",
    "diffusion_models/flux1": "black-forest-labs/FLUX.1-dev (flux1-dev.safetensors, gated)",
    "checkpoints/sd_xl": "stabilityai/stable-diffusion-xl-base-1.0 (sd_xl_base_1.0.safetensors)",
}
#: Files an official folder must hold for the trainer to start.
_OFFICIAL: dict[str, tuple[str, tuple[str, ...], str]] = {
    "wan14b": ("ckpt_path", ("config.json", "Wan2.1_VAE.pth", "google/umt5-xxl"), _WAN_DOWNLOAD),
    "flux": ("diffusers_path", ("model_index.json", "vae", "text_encoder", "text_encoder_2"), _FLUX_DOWNLOAD),
}


@dataclass
class ModelPaths:
    """``[model]`` keys to write, and what is missing with how to get it."""
    keys: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def _source(folder: str, name: str) -> str:
    for prefix, source in _COMFY_SOURCES.items():
        if f"{folder}/{name}".startswith(prefix):
            return source
    return "the model's official page"


def find_model_paths(model: str, *, comfy_models: Path | None = None,
                     official: Path | None = None) -> ModelPaths:
    """Fill ``[model]`` paths from ``comfy_models`` (a ComfyUI ``models/`` folder) and the
    official checkpoint folder, checking every file exists."""
    found = ModelPaths()
    if comfy_models is not None:
        for (key_model, key), (folder, names) in _COMFY_FILES.items():
            if key_model != model:
                continue
            hit = next((comfy_models / folder / n for n in names if (comfy_models / folder / n).is_file()), None)
            if hit is not None:
                found.keys[key] = str(hit)
            elif key == "checkpoint_path" or model == "wan14b":
                found.missing.append(f"{folder}/{names[0]} is not in {comfy_models} — download it from "
                                     f"{_source(folder, names[0])} into {comfy_models / folder}")
    if model not in _OFFICIAL and official is not None:
        # Single-file models (SDXL): the given path is the checkpoint itself.
        if official.is_file():
            found.keys["checkpoint_path"] = str(official)
        else:
            found.missing.append(f"{official} does not exist — give the model's .safetensors file")
    if model in _OFFICIAL:
        key, needed, download = _OFFICIAL[model]
        if official is None:
            found.missing.append(f"{key}: the official {model} folder is still needed (config, VAE, tokenizer) — "
                                 f"get it without the big weights: {download}; then pass its path")
        else:
            found.keys[key] = str(official)
            absent = [n for n in needed if not (official / n).exists()]
            if absent:
                found.missing.append(f"{official} lacks {', '.join(absent)} — fetch it with: {download}")
    return found
