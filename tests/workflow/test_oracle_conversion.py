"""UI → API conversion reproduces the official frontend's output for every oracle pair."""

from __future__ import annotations

import json
import random

import pytest

from pistachio_tui.workflow.convert import ui_to_api
from tests.conftest import ORACLE_DIR, load_fixture

PAIRS = sorted(p.name[: -len(".ui.json")] for p in ORACLE_DIR.glob("*.ui.json"))


@pytest.fixture(scope="module")
def object_info():
    return load_fixture("object_info")["body"]


def test_oracle_has_all_pairs():
    assert len(PAIRS) == 74


@pytest.mark.parametrize("name", PAIRS)
def test_conversion_matches_frontend(name, object_info):
    ui = json.loads((ORACLE_DIR / f"{name}.ui.json").read_text())
    expected = json.loads((ORACLE_DIR / f"{name}.api.json").read_text())
    result = ui_to_api(ui, object_info, rng=random.Random(0))
    assert result.prompt == expected
