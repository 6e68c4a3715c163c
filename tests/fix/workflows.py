"""UI-format workflows for the fix flow: one needing two absent node packs and
three absent models, and a small one needing only a checkpoint."""

from __future__ import annotations

from typing import Any

# (id, type, widgets_values, {input name: (source id, source slot, type)}, [output types])
Node = tuple[int, str, list[Any], dict[str, tuple[int, int, str]], list[str]]

FIX_NODES: list[Node] = [
    (1, "CheckpointLoaderSimple", ["fixflow_ckpt.safetensors"], {}, ["MODEL", "CLIP", "VAE"]),
    (2, "CLIPTextEncode", ["a pistachio orchard"], {"clip": (1, 1, "CLIP")}, ["CONDITIONING"]),
    (3, "CLIPTextEncode", ["blurry"], {"clip": (1, 1, "CLIP")}, ["CONDITIONING"]),
    (4, "EmptyLatentImage", [512, 512, 1], {}, ["LATENT"]),
    (5, "KSampler", [7, "fixed", 4, 7.0, "euler", "normal", 1.0],
     {"model": (1, 0, "MODEL"), "positive": (2, 0, "CONDITIONING"), "negative": (3, 0, "CONDITIONING"),
      "latent_image": (4, 0, "LATENT")}, ["LATENT"]),
    (6, "VAELoader", ["fixflow_vae.safetensors"], {}, ["VAE"]),
    (7, "VAEDecode", [], {"samples": (5, 0, "LATENT"), "vae": (6, 0, "VAE")}, ["IMAGE"]),
    (8, "UpscaleModelLoader", ["fixflow_upscaler.pth"], {}, ["UPSCALE_MODEL"]),
    (9, "UltimateSDUpscale", [2.0, 7, "fixed", 4, 7.0, "euler", "normal", 0.2, "Linear", 512, 512],
     {"image": (7, 0, "IMAGE"), "model": (1, 0, "MODEL"), "positive": (2, 0, "CONDITIONING"),
      "negative": (3, 0, "CONDITIONING"), "vae": (6, 0, "VAE"), "upscale_model": (8, 0, "UPSCALE_MODEL")},
     ["IMAGE"]),
    (10, "VHS_VideoCombine", [8, 0, "fixflow", "image/gif", False, True], {"images": (9, 0, "IMAGE")},
     ["VHS_FILENAMES"]),
    (11, "SaveImage", ["fixflow"], {"images": (7, 0, "IMAGE")}, []),
]

CHECKPOINT_ONLY_NODES: list[Node] = [
    (1, "CheckpointLoaderSimple", ["fixflow_ckpt.safetensors"], {}, ["MODEL", "CLIP", "VAE"]),
    (2, "EmptyLatentImage", [64, 64, 1], {}, ["LATENT"]),
    (3, "VAEDecode", [], {"samples": (2, 0, "LATENT"), "vae": (1, 2, "VAE")}, ["IMAGE"]),
    (4, "SaveImage", ["fixflow"], {"images": (3, 0, "IMAGE")}, []),
]

MODELS = [
    ("fixflow_ckpt.safetensors", "checkpoints"),
    ("fixflow_vae.safetensors", "vae"),
    ("fixflow_upscaler.pth", "upscale_models"),
]
PACK_NODES = ["UltimateSDUpscale", "VHS_VideoCombine"]


def fix_workflow(files_url: str, nodes_spec: list[Node] | None = None,
                 models: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A UI workflow of ``nodes_spec`` (default: the two-packs, three-models one),
    its ``models`` metadata pointing at ``files_url``."""
    nodes_spec = FIX_NODES if nodes_spec is None else nodes_spec
    models = MODELS if models is None else models
    links: list[list[Any]] = []
    outputs: dict[tuple[int, int], list[int]] = {}
    nodes = []
    for node_id, type_, widgets, inputs, _outs in nodes_spec:
        ui_inputs = []
        for slot, (name, (src, src_slot, kind)) in enumerate(inputs.items()):
            link_id = len(links) + 1
            links.append([link_id, src, src_slot, node_id, slot, kind])
            outputs.setdefault((src, src_slot), []).append(link_id)
            ui_inputs.append({"name": name, "type": kind, "link": link_id})
        nodes.append({"id": node_id, "type": type_, "pos": [0, 0], "size": [300, 100], "flags": {},
                      "order": node_id, "mode": 0, "inputs": ui_inputs, "properties": {},
                      "widgets_values": widgets})
    for node, (node_id, _t, _w, _i, outs) in zip(nodes, nodes_spec):
        node["outputs"] = [{"name": kind, "type": kind, "links": outputs.get((node_id, slot), []),
                            "slot_index": slot} for slot, kind in enumerate(outs)]
    return {
        "last_node_id": len(nodes), "last_link_id": len(links), "nodes": nodes, "links": links,
        "groups": [], "config": {}, "extra": {}, "version": 0.4,
        "models": [{"name": name, "url": f"{files_url}/{name}", "directory": folder} for name, folder in models],
    }
