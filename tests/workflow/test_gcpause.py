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
