"""Static data the simulator serves: recorded node definitions, model folders, defaults.

The recorded ``object_info`` comes from a real ComfyUI 0.8.0 started without
models, so every model picker in it is an empty list. The simulator fills
those pickers from its own model folders, which needs to know which input of
which loader lists which folder: that is the table below.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from importlib import resources
from typing import Any

#: Folder names GET /models answers with, in the real server's order.
MODEL_FOLDERS: tuple[str, ...] = (
    "checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models",
    "clip_vision", "style_models", "embeddings", "diffusers", "vae_approx",
    "controlnet", "gligen", "upscale_models", "latent_upscale_models", "custom_nodes",
    "hypernetworks", "photomaker", "classifiers", "model_patches", "audio_encoders",
)

#: Files the simulator pretends to have, so a demo workflow can run as shipped.
DEFAULT_MODELS: dict[str, list[str]] = {
    "checkpoints": ["v1-5-pruned-emaonly-fp16.safetensors", "dreamshaper_8.safetensors"],
    "loras": ["add_detail.safetensors"],
    "vae": ["vae-ft-mse-840000-ema-pruned.safetensors"],
    "upscale_models": ["RealESRGAN_x4plus.pth"],
    "embeddings": ["easynegative.safetensors"],
}

# Inputs whose name alone says the folder, whatever node carries them.
_FOLDER_BY_INPUT: dict[str, str] = {
    "ckpt_name": "checkpoints",
    "lora_name": "loras",
    "vae_name": "vae",
    "unet_name": "diffusion_models",
    "clip_name": "text_encoders",
    "clip_name1": "text_encoders",
    "clip_name2": "text_encoders",
    "clip_name3": "text_encoders",
    "clip_name4": "text_encoders",
    "control_net_name": "controlnet",
    "style_model_name": "style_models",
    "gligen_name": "gligen",
    "hypernetwork_name": "hypernetworks",
    "photomaker_model_name": "photomaker",
    "audio_encoder_name": "audio_encoders",
}

# Inputs whose folder depends on the node (same input name, other folder).
_FOLDER_BY_NODE_INPUT: dict[tuple[str, str], str] = {
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("LatentUpscaleModelLoader", "model_name"): "latent_upscale_models",
    ("CheckpointLoader", "config_name"): "configs",
    ("DiffusersLoader", "model_path"): "diffusers",
    ("ModelPatchLoader", "name"): "model_patches",
    ("LTXAVTextEncoderLoader", "text_encoder"): "text_encoders",
}


#: Pickers that list the server's input folder (uploads land there).
INPUT_FILE_PICKERS: frozenset[tuple[str, str]] = frozenset({
    ("LoadImage", "image"), ("LoadImageMask", "image"), ("LoadVideo", "file"),
    ("LoadAudio", "audio"), ("Load3D", "model_file"),
})


def model_folder_for(class_type: str, input_name: str) -> str | None:
    """The model folder whose files a loader's picker lists, or None for other inputs."""
    folder = _FOLDER_BY_NODE_INPUT.get((class_type, input_name))
    if folder is not None:
        return folder
    return _FOLDER_BY_INPUT.get(input_name)


def folder_holding(options: list[Any], models: dict[str, list[str]]) -> str | None:
    """The folder that holds every listed option, for pickers of loaders not in the table.

    A real server's ``object_info`` lists the files it has; when all of them
    sit in one model folder, the picker is that folder's.
    """
    wanted = set(options)
    if not wanted or not all(isinstance(o, str) for o in wanted):
        return None
    for folder, files in models.items():
        if wanted <= set(files):
            return folder
    return None


def combo_options(spec: list[Any]) -> list[Any] | None:
    """The option list of a combo input spec (old ``[[...], {...}]`` or new ``["COMBO", {"options"}]``)."""
    if not spec:
        return None
    kind = spec[0]
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        return list(extra.get("options", []))
    return None


def with_combo_options(spec: list[Any], options: list[Any]) -> list[Any]:
    """A copy of a combo input spec listing ``options`` instead, in the spec's own style."""
    extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else None
    if spec[0] == "COMBO":
        new_extra = dict(extra or {})
        new_extra["options"] = list(options)
        return ["COMBO", new_extra]
    return [list(options), extra] if extra is not None else [list(options)]


@lru_cache(maxsize=4)
def _read_gz_text(name: str) -> str:
    data = resources.files("pistachio_tui.sim").joinpath("data", name).read_bytes()
    return gzip.decompress(data).decode()


def _read_gz_json(name: str) -> Any:
    # Parsing the cached text gives every caller its own copy, faster than deepcopy.
    return json.loads(_read_gz_text(name))


def _read_json(*parts: str) -> Any:
    return json.loads(resources.files("pistachio_tui.sim").joinpath("data", *parts).read_text())


def recorded_object_info() -> dict[str, Any]:
    """A private copy of the 570 node definitions recorded from ComfyUI 0.8.0."""
    return _read_gz_json("object_info.json.gz")


def recorded_system_stats() -> dict[str, Any]:
    """The recorded GET /system_stats body."""
    return _read_gz_json("system_stats.json.gz")


def frontend_extensions() -> list[str]:
    """The recorded GET /extensions body."""
    return _read_json("extensions.json")


def node_packs() -> list[dict[str, Any]]:
    """The simulated custom node packs the Manager emulation can install."""
    return _read_json("packs.json")["packs"]


def seed_workflows() -> dict[str, bytes]:
    """Saved workflows the simulator lists under the user's ``workflows`` folder."""
    folder = resources.files("pistachio_tui.sim").joinpath("data", "workflows")
    return {entry.name: entry.read_bytes() for entry in folder.iterdir() if entry.name.endswith(".json")}
