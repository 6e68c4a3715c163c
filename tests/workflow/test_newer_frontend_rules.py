"""Conversion rules of newer frontends (up to 1.58) that the 1.35.9 oracle pairs cannot show.

Each case names the frontend source it follows: ``graphToPrompt`` in
``src/utils/executionUtil.ts``, the widget registry in ``src/scripts/widgets.ts``
and the audio widgets in ``src/extensions/core/uploadAudio.ts``.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.load import load_workflow
from tests.workflow.helpers import object_info

OI = object_info()
SUB_ID = "5a0c1f2e-0000-4000-8000-000000000001"
NESTED_ID = "5a0c1f2e-0000-4000-8000-000000000002"


def _convert(ui: dict[str, Any], object_info: dict[str, Any] = OI) -> dict[str, Any]:
    return to_api(load_workflow(json.dumps(ui).encode()), object_info, rng=random.Random(0)).prompt


def _node(nid, ntype, inputs=(), outputs=(), values=None, mode=0, **extra):
    return {
        "id": nid, "type": ntype, "mode": mode, "properties": extra.pop("properties", {}),
        "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
        "outputs": [{"name": n, "type": t, "links": links} for n, t, links in outputs],
        "widgets_values": values if values is not None else [], **extra,
    }


def _save_subgraph(sid: str) -> dict[str, Any]:
    """A subgraph that saves the image it is given (input 0) and hands it on inverted (output 0)."""
    return {
        "id": sid, "name": "save and invert", "nodes": [
            _node(2, "SaveImage", [("images", "IMAGE", 1)], [], ["inner"]),
            _node(4, "ImageInvert", [("image", "IMAGE", 4)], [("IMAGE", "IMAGE", [2])]),
        ],
        "links": [
            {"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 2, "target_slot": 0, "type": "IMAGE"},
            {"id": 4, "origin_id": -10, "origin_slot": 0, "target_id": 4, "target_slot": 0, "type": "IMAGE"},
            {"id": 2, "origin_id": 4, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "IMAGE"},
        ],
        "inputs": [{"name": "image", "type": "IMAGE", "linkIds": [1, 4]}],
        "outputs": [{"name": "IMAGE", "type": "IMAGE", "linkIds": [2]}],
    }


def _graph_with_subgraph(mode: int) -> dict[str, Any]:
    """LoadImage → [subgraph instance 5: SaveImage inside] → SaveImage 9."""
    return {
        "nodes": [
            _node(1, "LoadImage", [], [("IMAGE", "IMAGE", [1]), ("MASK", "MASK", [])], ["cat.png", "image"]),
            _node(5, SUB_ID, [("image", "IMAGE", 1)], [("IMAGE", "IMAGE", [2])], [], mode=mode),
            _node(9, "SaveImage", [("images", "IMAGE", 2)], [], ["outer"]),
        ],
        "links": [[1, 1, 0, 5, 0, "IMAGE"], [2, 5, 0, 9, 0, "IMAGE"]],
        "definitions": {"subgraphs": [_save_subgraph(SUB_ID)]},
        "extra": {}, "version": 0.4,
    }


def test_active_subgraph_runs_its_inner_nodes():
    prompt = _convert(_graph_with_subgraph(0))
    assert prompt["5:2"]["inputs"] == {"filename_prefix": "inner", "images": ["1", 0]}
    assert prompt["9"]["inputs"]["images"] == ["5:4", 0]


def test_muted_subgraph_runs_none_of_its_inner_nodes():
    prompt = _convert(_graph_with_subgraph(2))
    assert sorted(prompt) == ["1", "9"]
    assert "images" not in prompt["9"]["inputs"]


def test_bypassed_subgraph_runs_none_of_its_inner_nodes_and_passes_its_input_through():
    prompt = _convert(_graph_with_subgraph(4))
    assert sorted(prompt) == ["1", "9"]
    assert prompt["9"]["inputs"]["images"] == ["1", 0]


def test_muted_subgraph_nested_in_another_still_runs_as_in_the_frontend():
    """graphToPrompt only skips instances on the root graph: SubgraphNode.getInnerNodes expands
    nested instances whatever their mode, so the frontend queues the inner SaveImage here too."""
    ui = _graph_with_subgraph(0)
    inner = _save_subgraph(NESTED_ID)
    outer = _save_subgraph(SUB_ID)
    outer["nodes"].append(_node(3, NESTED_ID, [("image", "IMAGE", 3)], [("IMAGE", "IMAGE", [])], [], mode=2))
    outer["links"].append({"id": 3, "origin_id": -10, "origin_slot": 0, "target_id": 3, "target_slot": 0,
                           "type": "IMAGE"})
    outer["inputs"][0]["linkIds"].append(3)
    ui["definitions"]["subgraphs"] = [outer, inner]
    prompt = _convert(ui)
    assert prompt["5:3:2"]["inputs"] == {"filename_prefix": "inner", "images": ["1", 0]}


def _with_node_type(name: str, required: dict[str, Any]) -> dict[str, Any]:
    info = copy.copy(OI)
    info[name] = {"input": {"required": required}, "input_order": {"required": list(required)},
                  "output": ["IMAGE"], "output_name": ["IMAGE"], "name": name, "display_name": name,
                  "category": "test", "output_node": False}
    return info


def test_curve_is_a_widget_sent_with_its_type_and_keeps_the_next_widget_in_place():
    info = _with_node_type("ApplyCurve", {
        "curve": ["CURVE", {"default": [[0, 0], [1, 1]]}],
        "strength": ["FLOAT", {"default": 1.0}],
        "color": ["COLOR", {"default": "#ffffff"}],
        "box": ["BOUNDING_BOX", {}],
    })
    points = [[0, 0], [0.5, 0.7], [1, 1]]
    box = {"x": 0, "y": 0, "width": 64, "height": 64}
    ui = {"nodes": [_node(1, "ApplyCurve", [], [("IMAGE", "IMAGE", [])], [points, 0.25, "#ff0000", box])],
          "links": [], "extra": {}, "version": 0.4}
    assert _convert(ui, info)["1"]["inputs"] == {
        "curve": {"__type__": "CURVE", "__value__": points}, "strength": 0.25, "color": "#ff0000", "box": box,
    }


def test_newer_widget_types_are_widgets_not_sockets():
    from pistachio_tui.workflow.node_widgets import is_widget_input

    for kind in ("CURVE", "COLOR", "BOUNDING_BOX", "BOUNDING_BOXES", "RANGE", "PAINTER", "COMPOSITOR",
                 "VIDEO_EDIT", "COLORS", "IMAGECOMPARE", "CHART", "GALLERIA", "TEXTAREA", "MARKDOWN",
                 "RESOLUTION_PREVIEW", "LIGHT_INFO_PREVIEW"):
        assert is_widget_input([kind, {}]), kind
        assert not is_widget_input([kind, {"forceInput": True}]), kind
    for socket in ("IMAGE", "LOAD3D_CAMERA", "LOAD_3D_ANIMATION", "COMFY_AUTOGROW_V3", "COMFY_MATCHTYPE_V3"):
        assert not is_widget_input([socket, {}]), socket


def _audio_ui() -> dict[str, Any]:
    return {
        "nodes": [
            _node(1, "LoadAudio", [], [("AUDIO", "AUDIO", [1])], ["voices/demo clip.mp3", None, None]),
            _node(2, "RecordAudio", [], [("AUDIO", "AUDIO", [])], ["", ""]),
            _node(3, "SaveAudio", [("audio", "AUDIO", 1)], [], ["audio/ComfyUI"]),
        ],
        "links": [[1, 1, 0, 3, 0, "AUDIO"]], "extra": {}, "version": 0.4,
    }


def test_audio_ui_widgets_get_what_the_frontend_sends():
    """Frontend 1.35.9 (core extensions Comfy.AudioWidget / Comfy.RecordAudio): the player is a DOM
    widget with no value getter, so it sends "" whatever it plays or the file saved (here null);
    the recorder sends what was recorded in this session, "" for a reopened file."""
    prompt = _convert(_audio_ui())
    assert prompt["1"]["inputs"] == {"audio": "voices/demo clip.mp3", "audioUI": ""}
    assert prompt["2"]["inputs"] == {"audio": ""}
    assert prompt["3"]["inputs"] == {"filename_prefix": "audio/ComfyUI", "audioUI": "", "audio": ["1", 0]}


def test_untitled_nodes_get_the_editors_english_display_name():
    """The editor's locale can lag the server: 0.8.0 says "Mahiro CFG", frontend 1.35.9 shows its own
    locale's name. A class the locale lacks shows the server's display name, else its class name."""
    ui = {"nodes": [
        _node(1, "Mahiro", [("model", "MODEL", None)], [("MODEL", "MODEL", [])]),
        _node(2, "ManualSigmas", [], [("SIGMAS", "SIGMAS", [])], ["1, 0.5"]),
        _node(3, "Mahiro", [("model", "MODEL", None)], [("MODEL", "MODEL", [])], title="My guidance"),
    ], "links": [], "extra": {}, "version": 0.4}
    assert OI["Mahiro"]["display_name"] == "Mahiro CFG"
    prompt = _convert(ui)
    assert prompt["1"]["_meta"]["title"] == "Mahiro is so cute that she deserves a better guidance function!! (。・ω・。)"
    assert prompt["2"]["_meta"]["title"] == "ManualSigmas"
    assert prompt["3"]["_meta"]["title"] == "My guidance"


def test_a_muted_reroute_passes_nothing_on():
    """ExecutableNodeDTO.resolveOutput returns nothing for a muted (NEVER) node before anything else
    (frontend 1.58.1; 1.35.9 still followed a muted Reroute through to its source)."""
    ui = {"nodes": [
        _node(1, "LoadImage", [], [("IMAGE", "IMAGE", [1]), ("MASK", "MASK", [])], ["cat.png", "image"]),
        _node(2, "Reroute", [("", "*", 1)], [("", "IMAGE", [2])], mode=2),
        _node(3, "SaveImage", [("images", "IMAGE", 2)], [], ["out"]),
    ], "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]], "extra": {}, "version": 0.4}
    assert _convert(ui)["3"]["inputs"] == {"filename_prefix": "out"}
    ui["nodes"][1]["mode"] = 0
    assert _convert(ui)["3"]["inputs"] == {"filename_prefix": "out", "images": ["1", 0]}
