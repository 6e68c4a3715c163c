"""Malformed input of every kind: only WorkflowError may escape.

Examples are bounded so the default run takes seconds; set
``PISTACHIO_FUZZ_EXAMPLES`` for a longer hunt.
"""

from __future__ import annotations

import json
import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.deps import analyse
from pistachio_tui.workflow.imagemeta import PNG_SIGNATURE
from pistachio_tui.workflow.load import WorkflowError, load_workflows
from tests.workflow.helpers import object_info, png_chunk, tiny_ui
from tests.workflow.test_group_nodes import group_workflow

EXAMPLES = int(os.environ.get("PISTACHIO_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OBJECT_INFO = object_info()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 20) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _exercise(data: bytes) -> None:
    try:
        for workflow in load_workflows(data):
            to_api(workflow, OBJECT_INFO, rng=random.Random(0))
            analyse(workflow, OBJECT_INFO)
    except WorkflowError:
        pass


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i))


def _replace(doc, path, new):
    if not path:
        return new
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return doc


BASES = {"plain": tiny_ui, "group": group_workflow}
PATHS = [(base, path) for base, make in BASES.items() for path in _paths(make())]


@FUZZ
@given(st.sampled_from(sorted(BASES)), st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=3))
def test_mutated_ui_workflows(base, edits):
    doc = BASES[base]()
    for (edit_base, path), value in edits:
        if edit_base != base:
            continue
        try:
            doc = _replace(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue
    _exercise(json.dumps(doc).encode())


@FUZZ
@given(json_values)
def test_arbitrary_json(value):
    _exercise(json.dumps(value).encode())


@FUZZ
@given(st.dictionaries(st.text(max_size=4), st.fixed_dictionaries({"class_type": json_values, "inputs": json_values}), max_size=4))
def test_api_shaped_json(value):
    _exercise(json.dumps(value).encode())


@FUZZ
@given(st.binary(max_size=64), st.sampled_from([b"", PNG_SIGNATURE, b"PK\x03\x04", b"RIFF\x10\x00\x00\x00WEBP"]))
def test_arbitrary_bytes(blob, prefix):
    _exercise(prefix + blob)


@FUZZ
@given(st.sampled_from([b"tEXt", b"zTXt", b"iTXt"]), st.binary(max_size=40), st.text(max_size=30))
def test_png_text_chunks(ctype, junk, text):
    body = b"workflow\0" + junk + text.encode()
    _exercise(PNG_SIGNATURE + png_chunk(ctype, body) + png_chunk(b"IEND", b""))
