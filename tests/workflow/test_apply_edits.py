"""apply_edits: the form's typed values written into a copy of the prompt (what Workflows queues and Batch sweeps)."""

from __future__ import annotations

import copy
import json

import pytest

from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.edit import apply_edits, find_params
from pistachio_tui.workflow.load import WorkflowError, load_workflow
from tests.workflow.helpers import object_info, tiny_ui


def _prompt() -> dict:
    return to_api(load_workflow(json.dumps(tiny_ui()).encode(), name="t"), object_info()).prompt


def test_typed_values_land_in_a_copy():
    prompt = _prompt()
    before = copy.deepcopy(prompt)
    params = find_params(prompt)
    steps = next(p for p in params if p.kind == "steps")
    positive = next(p for p in params if p.role == "positive")
    edited = apply_edits(prompt, [(steps, "7"), (positive, "a [red] fox")])
    assert edited[steps.node_id]["inputs"]["steps"] == 7
    assert edited[positive.node_id]["inputs"][positive.name] == "a [red] fox"
    assert prompt == before, "the open workflow's prompt is not changed"


def test_untouched_values_stay_as_saved_and_bad_ones_say_which():
    prompt = _prompt()
    params = find_params(prompt)
    assert apply_edits(prompt, [(p, str(p.value)) for p in params]) == prompt
    steps = next(p for p in params if p.kind == "steps")
    with pytest.raises(WorkflowError):
        apply_edits(prompt, [(steps, "many")])
