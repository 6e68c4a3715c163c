"""Needs analysis: missing node classes, model files with folders, presence and safety."""

from __future__ import annotations

import json

from pistachio_tui.workflow.deps import PackRef, analyse, is_unsafe_name
from pistachio_tui.workflow.load import load_workflow
from tests.workflow.helpers import object_info, tiny_ui


def _needs(ui, server_models=None, oi=None):
    return analyse(load_workflow(json.dumps(ui).encode()), oi or object_info(), server_models)


def test_models_from_loaders_with_folders_and_metadata_urls():
    needs = _needs(tiny_ui())
    by_name = {m.name: m for m in needs.models}
    ckpt, lora = by_name["sd_xl_base_1.0.safetensors"], by_name["detail.safetensors"]
    assert (ckpt.folder, ckpt.node_id, ckpt.input_name) == ("checkpoints", "4", "ckpt_name")
    assert ckpt.url.startswith("https://huggingface.co/")
    assert (lora.folder, lora.input_name, lora.url) == ("loras", "lora_name", None)
    # The recorded server has no models at all: its option lists say so.
    assert ckpt.present is False and lora.present is False
    assert needs.missing_nodes == [] and "KSampler" in needs.node_types


def test_presence_from_server_lists_including_legacy_folder_names():
    ui = tiny_ui()
    ui["nodes"].append({"id": 20, "type": "CLIPLoader", "mode": 0, "inputs": [], "outputs": [],
                        "widgets_values": ["t5xxl_fp16.safetensors", "sd3", "default"]})
    needs = _needs(ui, {"checkpoints": ["sd_xl_base_1.0.safetensors"], "clip": ["t5xxl_fp16.safetensors"], "loras": []})
    presence = {m.name: (m.folder, m.present) for m in needs.models}
    assert presence["sd_xl_base_1.0.safetensors"] == ("checkpoints", True)
    assert presence["t5xxl_fp16.safetensors"] == ("text_encoders", True)
    assert presence["detail.safetensors"] == ("loras", False)
    assert [m.name for m in needs.missing_models] == ["detail.safetensors"]


def test_missing_nodes_and_custom_loader_values():
    ui = tiny_ui()
    ui["nodes"].append({"id": 21, "type": "UnetLoaderGGUF", "mode": 0, "inputs": [], "outputs": [],
                        "widgets_values": ["flux1-dev-Q4_K_S.gguf"]})
    needs = _needs(ui)
    assert needs.missing_nodes == ["UnetLoaderGGUF"]
    gguf = next(m for m in needs.models if m.name.endswith(".gguf"))
    assert (gguf.folder, gguf.node_id, gguf.present) == (None, "21", None)


def test_metadata_only_models_and_unsafe_names():
    ui = tiny_ui()
    ui["models"] = [
        {"name": "../../etc/passwd", "url": "https://example.org/x", "directory": "loras"},
        {"name": "ok.safetensors", "url": "https://example.org/ok", "directory": "../outside"},
        {"name": "upscaler.pth", "url": "https://example.org/u", "directory": "upscale_models"},
    ]
    by_name = {m.name: m for m in _needs(ui).models}
    assert by_name["../../etc/passwd"].unsafe and by_name["ok.safetensors"].unsafe
    up = by_name["upscaler.pth"]
    assert (up.folder, up.unsafe, up.present, up.input_name) == ("upscale_models", False, None, None)


def test_unsafe_name_rules():
    for bad in ("/abs/model.safetensors", "C:\\models\\x.ckpt", "a/../b.pt", "..\\x.pt", "~/x.pt", ""):
        assert is_unsafe_name(bad), bad
    for good in ("sub/dir/model.safetensors", "model..v2.safetensors", "x.pt"):
        assert not is_unsafe_name(good), good


def test_api_format_workflow():
    api = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "wan2.1_t2v_1.3B_fp16.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "MysteryNode", "inputs": {"model": ["1", 0], "file": "thing.safetensors"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat.safetensors", "clip": ["1", 0]}},
    }
    needs = analyse(load_workflow(json.dumps(api).encode()), object_info())
    assert needs.missing_nodes == ["MysteryNode"]
    assert {(m.name, m.folder) for m in needs.models} == {
        ("wan2.1_t2v_1.3B_fp16.safetensors", "diffusion_models"), ("thing.safetensors", None)}


def test_custom_loader_folder_from_matching_option_list():
    oi = json.loads(json.dumps(object_info()))
    loras = ["a.safetensors", "b.safetensors"]
    oi["LoraLoader"]["input"]["required"]["lora_name"][0] = loras
    oi["FancyLoraStack"] = {"input": {"required": {"pick": [loras, {}]}}, "output": ["MODEL"], "name": "FancyLoraStack"}
    api = {"1": {"class_type": "FancyLoraStack", "inputs": {"pick": "c.safetensors"}}}
    need = analyse(load_workflow(json.dumps(api).encode()), oi).models[0]
    assert (need.folder, need.present) == ("loras", False)


def test_pack_identity_recorded_by_the_editor_is_kept_per_node_class():
    ui = tiny_ui()
    ui["nodes"].append({"id": 30, "type": "CustomSharpen", "mode": 0, "inputs": [], "outputs": [],
                        "widgets_values": [], "properties": {"aux_id": "someone/sharpen-nodes", "ver": "4f1c2e9"}})
    # Values the frontend's schema refuses are not offered: a bad pack id, a repo path, a bad version.
    ui["nodes"].append({"id": 31, "type": "CustomBlur", "mode": 0, "inputs": [], "outputs": [], "widgets_values": [],
                        "properties": {"cnr_id": "-blur", "aux_id": "https://github.com/x/y", "ver": "latest"}})
    ui["nodes"].append({"id": 32, "type": "CustomGlow", "mode": 0, "inputs": [], "outputs": [], "widgets_values": [],
                        "properties": {"cnr_id": "glow-pack", "ver": "v1.2.0"}})
    for node in ui["nodes"]:
        if node["type"] == "KSampler":
            node["properties"] = {"cnr_id": "comfy-core", "ver": "0.3.64", "Node name for S&R": "KSampler"}
    packs = _needs(ui).packs
    assert packs["KSampler"] == PackRef("comfy-core", None, "0.3.64")
    assert packs["CustomSharpen"] == PackRef(None, "someone/sharpen-nodes", "4f1c2e9")
    assert "SaveImage" not in packs and "CustomBlur" not in packs
    assert packs["CustomGlow"] == PackRef("glow-pack", None, "1.2.0")
