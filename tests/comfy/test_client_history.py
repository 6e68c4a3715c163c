"""GET /history: recorded entries become HistoryEntry with outcome, times, outputs and errors."""

from __future__ import annotations

import pytest
import respx

from pistachio_tui.comfy.client import ComfyClient
from tests.comfy.recorded import BASE, json_response
from tests.conftest import load_fixture

SUCCESS = "09bcf2fc-d848-487a-9010-c6524bb0244f"


async def history_of(name: str, prompt_id: str | None = None, **kwargs):
    with respx.mock() as router:
        path = "/history" if prompt_id is None else f"/history/{prompt_id}"
        route = router.get(BASE + path).mock(return_value=json_response(load_fixture(name)))
        async with ComfyClient(BASE) as client:
            entries = await client.history(prompt_id, **kwargs)
        return entries, route.calls.last.request


async def test_success_entry():
    entries, _ = await history_of("success.history", SUCCESS)
    entry = entries[SUCCESS]
    assert (entry.status, entry.outcome, entry.completed, entry.number) == ("success", "success", True, 12)
    [out] = entry.outputs
    assert (out.node_id, out.filename, out.subfolder, out.type, out.kind) == (
        "3", "probe_00002_.png", "", "output", "images")
    assert entry.started_at == pytest.approx(1795365131.240)
    assert entry.finished_at == pytest.approx(1795365132.248)
    assert entry.duration == pytest.approx(1.008)
    assert entry.prompt["2"]["_meta"]["title"] == "Slow Steps"
    assert entry.outputs_to_execute == ["3"]
    assert entry.error is None and entry.cached_nodes == []
    assert [kind for kind, _ in entry.messages] == ["execution_start", "execution_cached", "execution_success"]


async def test_cached_entry_lists_every_node_cached():
    entries, _ = await history_of("cached.history")
    [entry] = entries.values()
    assert entry.outcome == "success" and entry.cached_nodes == ["1", "2", "3"]
    assert entry.outputs[0].filename == "probe_00002_.png"


async def test_error_entry_carries_the_exception():
    entries, _ = await history_of("exec_error.history")
    [entry] = entries.values()
    assert (entry.status, entry.outcome, entry.completed) == ("error", "error", False)
    assert entry.outputs == []
    assert entry.error["node_id"] == "4" and entry.error["node_type"] == "Boom"
    assert entry.error["exception_message"] == "probe failure: boom\n"
    assert entry.finished_at == pytest.approx(1795365132.909)
    assert entry.cached_nodes == ["1"]


async def test_interrupted_entry_is_an_error_upstream_but_interrupted_here():
    entries, _ = await history_of("interrupted.history")
    [entry] = entries.values()
    assert entry.status == "error" and entry.outcome == "interrupted"
    assert entry.error["node_type"] == "SlowSteps"
    assert entry.duration == pytest.approx(1.058)


async def test_history_all_with_max_items():
    entries, request = await history_of("history_all", max_items=10)
    assert request.url.params["max_items"] == "10"
    assert len(entries) == 8
    outcomes = [entries[pid].outcome for pid in entries]
    assert outcomes.count("success") == 4 and outcomes.count("error") == 2 and outcomes.count("interrupted") == 2
    assert sorted(e.number for e in entries.values()) == [0, 1, 2, 3, 12, 13, 14, 15]
