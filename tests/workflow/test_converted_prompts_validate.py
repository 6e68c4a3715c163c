"""Converted corpus prompts that use only core nodes pass the simulator's ComfyUI validation,
apart from the models and input files the recorded server does not have."""

from __future__ import annotations

import random

from pistachio_tui.sim.validate import validate_prompt
from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.deps import LOADER_FOLDERS, looks_like_model_file
from pistachio_tui.workflow.load import load_workflow
from pistachio_tui.workflow.node_widgets import UPLOAD_OPTIONS, input_options, ordered_inputs
from tests.workflow.helpers import corpus_files, object_info


def _links_past_outputs(prompt, oi) -> bool:
    # Templates newer than the recorded server link to outputs its nodes do not have yet.
    for node in prompt.values():
        for value in node["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and value[0] in prompt:
                source = oi[prompt[value[0]]["class_type"]]
                if value[1] >= len(source.get("output", [])):
                    return True
    return False


def _is_upload_input(oi, class_type, name) -> bool:
    return any(
        n == name and any(input_options(spec).get(o) for o in UPLOAD_OPTIONS)
        for n, spec in ordered_inputs(oi[class_type])
    )


def _environment_error(prompt, oi, node_id, error) -> bool:
    """A model file or input image the recorded server lacks, or a remote-API model name newer than it."""
    class_type = prompt[node_id]["class_type"]
    name = error.get("extra_info", {}).get("input_name")
    value = error.get("extra_info", {}).get("received_value")
    remote = str(oi[class_type].get("python_module", "")).startswith("comfy_api_nodes")
    return error["type"] == "value_not_in_list" and (
        (class_type, name) in LOADER_FOLDERS or looks_like_model_file(value)
        or _is_upload_input(oi, class_type, name) or remote
    )


def unexpected_errors(prompt, oi) -> list[str]:
    status, body = validate_prompt(prompt, oi, {})
    if status == 200:
        return []
    if not body.get("node_errors"):
        return [f"{body['error']['type']}: {body['error']['message']}"]
    return [
        f"{node_id} {error['type']}: {error.get('details')}"
        for node_id, entry in body["node_errors"].items()
        for error in entry["errors"] if not _environment_error(prompt, oi, node_id, error)
    ]


def test_core_only_corpus_prompts_validate():
    oi = object_info()
    checked, passed, skipped, failures = 0, 0, 0, []
    for path in corpus_files():
        result = to_api(load_workflow(path), oi, rng=random.Random(0))
        if result.unknown_types or not result.prompt:
            continue
        if _links_past_outputs(result.prompt, oi):
            skipped += 1
            continue
        checked += 1
        problems = unexpected_errors(result.prompt, oi)
        if problems:
            failures.append(f"{path.name}: {problems[:3]}")
        else:
            passed += 1
    print(f"\nvalidation: {checked} core-only prompts checked, {passed} clean apart from missing models, "
          f"{skipped} skipped (outputs newer than the server)")
    assert failures == []
    assert checked >= 195 and skipped <= 10
