"""Legacy group nodes (``extra.groupNodes``) execute as their inner nodes, ids ``"<group>:<index>"``."""

from __future__ import annotations

import json

from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.deps import analyse
from pistachio_tui.workflow.load import load_workflow
from tests.workflow.helpers import object_info

OI = object_info()


def _inner(index, ntype, inputs, outputs, values=None):
    return {
        "id": -1, "index": index, "type": ntype, "mode": 0, "properties": {},
        "inputs": [{"name": n, "type": t, "link": None} for n, t in inputs],
        "outputs": [{"name": n, "type": t, "links": []} for n, t in outputs],
        **({"widgets_values": values} if values is not None else {}),
    }


def group_workflow():
    definition = {
        "nodes": [
            _inner(0, "CheckpointLoaderSimple", [], [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")], ["old.ckpt"]),
            _inner(1, "CLIPTextEncode", [("clip", "CLIP")], [("CONDITIONING", "CONDITIONING")], ["old"]),
            _inner(2, "CLIPTextEncode", [("clip", "CLIP")], [("CONDITIONING", "CONDITIONING")], ["old"]),
            _inner(3, "KSampler", [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                                   ("latent_image", "LATENT")], [("LATENT", "LATENT")], [1, "fixed", 1, 1, "euler", "normal", 1]),
            _inner(4, "VAEDecode", [("samples", "LATENT"), ("vae", "VAE")], [("IMAGE", "IMAGE")]),
        ],
        "links": [[0, 1, 1, 0, 4, "CLIP"], [0, 1, 2, 0, 4, "CLIP"], [0, 0, 3, 0, 4, "MODEL"],
                  [1, 0, 3, 1, 6, "CONDITIONING"], [2, 0, 3, 2, 7, "CONDITIONING"], [3, 0, 4, 0, 3, "LATENT"],
                  [0, 2, 4, 1, 4, "VAE"]],
        "external": [],
    }
    return {
        "last_node_id": 30, "last_link_id": 101,
        "nodes": [
            {"id": 10, "type": "workflow>txt2img", "mode": 0, "properties": {},
             "inputs": [{"name": "latent_image", "type": "LATENT", "link": 100}],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [101]}],
             "widgets_values": ["sd15.safetensors", "a castle", "fog", 99, "fixed", 12, 5.5, "dpmpp_2m", "karras", 0.9]},
            {"id": 20, "type": "EmptyLatentImage", "mode": 0, "inputs": [],
             "outputs": [{"name": "LATENT", "type": "LATENT", "links": [100]}], "widgets_values": [512, 768, 2]},
            {"id": 30, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 101}],
             "outputs": [], "widgets_values": ["castle"]},
        ],
        "links": [[100, 20, 0, 10, 0, "LATENT"], [101, 10, 0, 30, 0, "IMAGE"]],
        "groups": [], "config": {}, "extra": {"groupNodes": {"txt2img": definition}}, "version": 0.4,
    }


def test_group_node_flattens_with_instance_values():
    result = to_api(load_workflow(json.dumps(group_workflow()).encode()), OI)
    prompt = result.prompt
    assert sorted(prompt) == ["10:0", "10:1", "10:2", "10:3", "10:4", "20", "30"]
    assert prompt["10:0"]["inputs"] == {"ckpt_name": "sd15.safetensors"}
    assert prompt["10:1"]["inputs"] == {"text": "a castle", "clip": ["10:0", 1]}
    assert prompt["10:2"]["inputs"] == {"text": "fog", "clip": ["10:0", 1]}
    assert prompt["10:3"]["inputs"] == {
        "seed": 99, "steps": 12, "cfg": 5.5, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 0.9,
        "model": ["10:0", 0], "positive": ["10:1", 0], "negative": ["10:2", 0], "latent_image": ["20", 0],
    }
    assert prompt["30"]["inputs"] == {"filename_prefix": "castle", "images": ["10:4", 0]}
    assert result.unknown_types == [] and result.warnings == []


def test_group_node_needs_list_inner_types_and_models():
    needs = analyse(load_workflow(json.dumps(group_workflow()).encode()), OI)
    assert needs.missing_nodes == []
    assert "KSampler" in needs.node_types and not any(t.startswith("workflow") for t in needs.node_types)
    assert [(m.name, m.folder, m.node_id) for m in needs.models] == [("sd15.safetensors", "checkpoints", "10:0")]
