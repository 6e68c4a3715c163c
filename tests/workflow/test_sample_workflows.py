"""The workflows shipped in ``workflows/`` load, convert, declare their models and validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from pistachio_tui.sim.validate import validate_prompt
from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.deps import analyse
from pistachio_tui.workflow.load import load_workflow
from tests.workflow.helpers import object_info

SAMPLES = Path(__file__).resolve().parents[2] / "workflows"
NAMES = ["sdxl_txt2img", "sdxl_img2img", "sdxl_lora", "upscale_esrgan", "wan21_t2v"]
OI = object_info()


@pytest.mark.parametrize("name", NAMES)
def test_sample_workflow(name):
    workflow = load_workflow(SAMPLES / f"{name}.json")
    assert workflow.format == "ui"
    result = to_api(workflow, OI)
    assert result.unknown_types == [] and result.warnings == []
    needs = analyse(workflow, OI)
    assert needs.missing_nodes == []
    assert needs.models and all(m.url and m.url.startswith("https://huggingface.co/") for m in needs.models)
    assert all(m.folder and not m.unsafe for m in needs.models)
    # The recorded server has no models: only those are missing ...
    status, body = validate_prompt(result.prompt, OI, {})
    assert status == 400
    assert {e["type"] for n in body["node_errors"].values() for e in n["errors"]} == {"value_not_in_list"}
    # ... and once the declared models are there, the prompt is accepted.
    installed: dict[str, list[str]] = {}
    for model in needs.models:
        installed.setdefault(model.folder, []).append(model.name)
    assert validate_prompt(result.prompt, OI, installed)[0] == 200


def test_all_samples_are_tested():
    assert sorted(p.stem for p in SAMPLES.glob("*.json")) == sorted(NAMES)
