"""Conversion rules the oracle pairs do not pin down on their own."""

from __future__ import annotations

import json
import random

from pistachio_tui.workflow.convert import is_valid_connection, to_api
from pistachio_tui.workflow.dynprompts import process_dynamic_prompt
from pistachio_tui.workflow.load import load_workflow
from tests.workflow.helpers import object_info, tiny_ui

OI = object_info()


def _convert(ui):
    return to_api(load_workflow(json.dumps(ui).encode()), OI, rng=random.Random(0))


def test_dynamic_prompts_strip_comments_and_pick_options():
    rng = random.Random(0)
    assert process_dynamic_prompt("a cat /* hidden */ on a mat // note\nsecond line", rng) == "a cat  on a mat \nsecond line"
    assert process_dynamic_prompt("{red|red} {fox|fox}", rng) == "red fox"
    assert process_dynamic_prompt(r"literal \{braces\} and \|", rng) == "literal {braces} and |"
    assert process_dynamic_prompt("{a|{b|b}}", random.Random(1)) in ("a", "b")


def test_slot_type_compatibility():
    assert is_valid_connection("IMAGE", "image") and is_valid_connection("*", "MODEL")
    assert is_valid_connection("INT,FLOAT", "FLOAT") and not is_valid_connection("INT", "FLOAT")


def test_bypassed_node_passes_matching_input_through():
    ui = tiny_ui()
    lora = next(n for n in ui["nodes"] if n["id"] == 10)
    lora["mode"] = 4
    prompt = _convert(ui).prompt
    assert "10" not in prompt
    assert prompt["3"]["inputs"]["model"] == ["4", 0]
    assert prompt["6"]["inputs"]["clip"] == ["4", 1]


def test_muted_node_is_dropped_with_the_links_into_it():
    ui = tiny_ui()
    next(n for n in ui["nodes"] if n["id"] == 8)["mode"] = 2
    prompt = _convert(ui).prompt
    assert "8" not in prompt and "images" not in prompt["9"]["inputs"]


def test_unknown_node_types_are_kept_and_reported():
    ui = tiny_ui()
    ui["nodes"].append({"id": 40, "type": "CustomUpscaler", "mode": 0, "title": "Upscale",
                        "inputs": [{"name": "image", "type": "IMAGE", "link": 50}], "outputs": [],
                        "widgets_values": ["4x", None]})
    ui["links"].append([50, 8, 0, 40, 0, "IMAGE"])
    result = _convert(ui)
    assert result.unknown_types == ["CustomUpscaler"]
    assert result.prompt["40"] == {"inputs": {"UNKNOWN": "null", "image": ["8", 0]}, "_meta": {"title": "Upscale"}}


def test_list_values_are_wrapped_and_dangling_links_warned():
    ui = tiny_ui()
    next(n for n in ui["nodes"] if n["id"] == 9)["widgets_values"] = [["a", "b"]]
    next(n for n in ui["nodes"] if n["id"] == 8)["inputs"][1]["link"] = 999
    result = _convert(ui)
    assert result.prompt["9"]["inputs"]["filename_prefix"] == {"__value__": ["a", "b"]}
    assert "vae" not in result.prompt["8"]["inputs"]
    assert any("link 999 does not exist" in w for w in result.warnings)


def test_filename_prefix_replacements():
    from datetime import datetime

    ui = tiny_ui()
    save = next(n for n in ui["nodes"] if n["id"] == 9)
    save["widgets_values"] = ["%date:yyyy-MM-dd%/fox_%KSampler.seed%_%Detail LoRA.lora_name%_%nope.x%_%width%"]
    result = to_api(load_workflow(json.dumps(ui).encode()), OI, now=datetime(2026, 3, 7, 9, 5, 1))
    assert result.prompt["9"]["inputs"]["filename_prefix"] == "2026-03-07/fox_42_detail.safetensors_%nope.x%_%width%"


def test_primitive_with_replace_property():
    from datetime import datetime

    from pistachio_tui.workflow.textreplace import format_date

    assert format_date("yy/M/d hh:mm:ss yyy", datetime(2026, 3, 7, 9, 5, 1)) == "26/3/7 09:05:01 yyy"
    ui = tiny_ui()
    ui["nodes"].append({"id": 50, "type": "PrimitiveNode", "mode": 0, "inputs": [],
                        "properties": {"Run widget replace on values": True},
                        "outputs": [{"name": "STRING", "type": "STRING", "links": [60], "widget": {"name": "filename_prefix"}}],
                        "widgets_values": ["run_%date:hhmm%"]})
    save = next(n for n in ui["nodes"] if n["id"] == 9)
    save["inputs"].append({"name": "filename_prefix", "type": "STRING", "link": 60, "widget": {"name": "filename_prefix"}})
    ui["links"].append([60, 50, 0, 9, 1, "STRING"])
    result = to_api(load_workflow(json.dumps(ui).encode()), OI, now=datetime(2026, 1, 1, 23, 59))
    assert result.prompt["9"]["inputs"]["filename_prefix"] == "run_2359"


def test_subgraph_containing_itself_is_refused():
    import pytest

    from pistachio_tui.workflow.load import WorkflowError

    inner = {"id": 1, "type": "loop", "mode": 0, "inputs": [{"name": "x", "type": "INT", "link": 1}], "outputs": []}
    subgraph = {"id": "loop", "name": "Loop", "nodes": [inner],
                "links": [{"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 0, "type": "INT"}],
                "inputs": [{"name": "x", "type": "INT", "linkIds": [1]}], "outputs": []}
    ui = {"nodes": [{"id": 5, "type": "loop", "mode": 0, "inputs": [], "outputs": [], "widgets_values": [3]}],
          "links": [], "definitions": {"subgraphs": [subgraph]}}
    with pytest.raises(WorkflowError, match="nest more than 32"):
        _convert(ui)


def test_loop_through_bypassed_nodes_is_reported_not_followed_forever():
    ui = tiny_ui()
    for nid, source_link in ((20, 61), (21, 60)):
        ui["nodes"].append({"id": nid, "type": "ImageInvert", "mode": 4, "properties": {},
                            "inputs": [{"name": "image", "type": "IMAGE", "link": source_link}],
                            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": []}], "widgets_values": []})
    ui["links"] += [[60, 20, 0, 21, 0, "IMAGE"], [61, 21, 0, 20, 0, "IMAGE"], [62, 20, 0, 9, 0, "IMAGE"]]
    save = next(n for n in ui["nodes"] if n["id"] == 9)
    save["inputs"][0]["link"] = 62
    result = _convert(ui)
    assert "images" not in result.prompt["9"]["inputs"]
    assert result.warnings == ["circular link at node 20 output 0"]
