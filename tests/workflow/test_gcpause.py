"""The cyclic-collector pause around parsing and conversion leaves the collector as it found it."""

from __future__ import annotations

import gc

import pytest

from pistachio_tui.workflow.gcpause import cyclic_gc_paused
from pistachio_tui.workflow.uigraph import parse_ui
from tests.workflow.helpers import tiny_ui


@pytest.fixture
def restore_gc():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_collector_is_paused_inside_and_back_on_after_even_on_error(restore_gc):
    gc.enable()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()
    parse_ui(tiny_ui())
    assert gc.isenabled()


def test_a_collector_someone_switched_off_stays_off(restore_gc):
    gc.disable()
    parse_ui(tiny_ui())
    assert not gc.isenabled()


def test_loading_a_file_pauses_the_collector_and_restores_it_even_when_the_json_is_broken(restore_gc, monkeypatch):
    import json

    from pistachio_tui.workflow import load

    seen: list[bool] = []
    real = load._json

    def spy(text, source, where="$"):
        seen.append(gc.isenabled())
        return real(text, source, where)

    monkeypatch.setattr(load, "_json", spy)
    gc.enable()
    load.load_workflow(json.dumps(tiny_ui()).encode())
    with pytest.raises(load.WorkflowError):
        load.load_workflow(b"{not json")
    assert seen == [False, False]
    assert gc.isenabled()
