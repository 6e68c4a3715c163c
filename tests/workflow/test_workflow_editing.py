"""Editing prompts, seeds, sampler settings, sizes and LoRA strengths in API and UI workflows."""

from __future__ import annotations

import json
import random

import pytest

from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.edit import (
    SEED_MAX,
    apply_seed_mode,
    apply_ui_seed_mode,
    find_params,
    find_ui_params,
    select_params,
    set_param,
    set_ui_param,
)
from pistachio_tui.workflow.load import WorkflowError, load_workflow
from tests.conftest import ORACLE_DIR
from tests.workflow.helpers import object_info, tiny_ui

OI = object_info()


def _ui_workflow(ui=None):
    return load_workflow(json.dumps(ui or tiny_ui()).encode(), name="t")


def _oracle(name):
    return load_workflow(ORACLE_DIR / f"{name}.ui.json")


def _api():
    return to_api(_ui_workflow(), OI).prompt


def test_find_params_with_prompt_roles():
    params = find_params(_api())
    prompts = {p.role: p.value for p in params if p.kind == "prompt"}
    assert prompts == {"positive": "a red fox in snow", "negative": "blurry, text"}
    kinds = {p.kind: p.value for p in params if p.kind != "prompt"}
    assert kinds == {
        "seed": 42, "steps": 25, "cfg": 7.0, "sampler": "euler", "scheduler": "normal", "denoise": 1.0,
        "width": 1024, "height": 1024, "batch_size": 1, "lora": "detail.safetensors",
        "lora_strength_model": 0.8, "lora_strength_clip": 0.6,
    }


def test_roles_follow_conditioning_chains():
    prompt = _api()
    prompt["20"] = {"class_type": "FluxGuidance", "inputs": {"conditioning": ["6", 0], "guidance": 3.5}}
    prompt["3"]["inputs"]["positive"] = ["20", 0]
    roles = {p.node_id: p.role for p in find_params(prompt) if p.kind == "prompt"}
    assert roles == {"6": "positive", "7": "negative"}


def test_set_param_on_api_prompt_by_kind_title_and_role():
    prompt = _api()
    set_param(prompt, "positive", "a blue fox")
    set_param(prompt, "steps", "30")
    set_param(prompt, "lora_strength_model", 0.5, node="Detail LoRA")
    set_param(prompt, "cfg", 4, node="KSampler")
    assert prompt["6"]["inputs"]["text"] == "a blue fox" and prompt["7"]["inputs"]["text"] == "blurry, text"
    assert prompt["3"]["inputs"]["steps"] == 30 and prompt["3"]["inputs"]["cfg"] == 4.0
    assert prompt["10"]["inputs"]["strength_model"] == 0.5 and prompt["10"]["inputs"]["strength_clip"] == 0.6


def test_set_param_rejects_bad_values_and_unknown_targets():
    prompt = _api()
    with pytest.raises(WorkflowError, match="whole number"):
        set_param(prompt, "steps", 2.5)
    with pytest.raises(WorkflowError, match="must be a number"):
        set_param(prompt, "cfg", "high")
    with pytest.raises(WorkflowError, match="no editable 'steps' on node 'VAEDecode'"):
        set_param(prompt, "steps", 3, node="VAEDecode")


def test_seed_modes():
    prompt = _api()
    assert apply_seed_mode(prompt, "increment")[0].value == 43
    assert apply_seed_mode(prompt, "fixed", value=7)[0].value == 7
    new = apply_seed_mode(prompt, "random", rng=random.Random(1))[0].value
    assert 0 <= new < SEED_MAX and prompt["3"]["inputs"]["seed"] == new
    prompt["3"]["inputs"]["seed"] = SEED_MAX - 1
    assert apply_seed_mode(prompt, "increment")[0].value == 0


def test_ui_edits_land_in_widgets_values_and_survive_saving():
    wf = _ui_workflow()
    set_ui_param(wf, OI, "negative", "ugly")
    set_ui_param(wf, OI, "width", 832)
    set_ui_param(wf, OI, "sampler", "dpmpp_2m")
    apply_ui_seed_mode(wf, OI, "random", rng=random.Random(3))
    saved = load_workflow(json.dumps(wf.ui).encode())
    nodes = {n["id"]: n for n in saved.ui["nodes"]}
    assert nodes[7]["widgets_values"] == ["ugly"]
    assert nodes[5]["widgets_values"][0] == 832
    assert nodes[3]["widgets_values"][1] == "randomize" and nodes[3]["widgets_values"][4] == "dpmpp_2m"
    prompt = to_api(saved, OI).prompt
    assert prompt["3"]["inputs"]["seed"] == nodes[3]["widgets_values"][0] != 42


def test_ui_edit_through_primitive_nodes():
    wf = _oracle("sdxl_simple_example")
    changed = set_ui_param(wf, OI, "steps", 40)
    assert {p.node_id for p in changed} == {"10", "11"}
    primitive = next(n for n in wf.ui["nodes"] if n["id"] == 45)
    assert primitive["widgets_values"][0] == 40
    prompt = to_api(wf, OI).prompt
    assert prompt["10"]["inputs"]["steps"] == prompt["11"]["inputs"]["steps"] == 40


def test_ui_edit_of_promoted_subgraph_widgets():
    wf = _oracle("image_omnigen2_t2i")
    params = find_ui_params(wf, OI)
    assert select_params(params, "width")[0].node_id == "42:11"
    set_ui_param(wf, OI, "width", 768)
    apply_ui_seed_mode(wf, OI, "fixed", value=5)
    host = next(n for n in wf.ui["nodes"] if n["id"] == 42)
    assert host["widgets_values"][1] == 768 and host["widgets_values"][3] == 5
    prompt = to_api(wf, OI).prompt
    assert prompt["42:11"]["inputs"]["width"] == 768 and prompt["42:21"]["inputs"]["noise_seed"] == 5
