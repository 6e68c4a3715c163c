"""The simulator answers the contract cases as the recorded real server did (``fixtures/comfyui-0.8.0/contract``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pistachio_tui.sim.server import SimServer
from tests.contract.record import TRACES, answers, trace
from tests.sim.sim_helpers import key_shape

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui-0.8.0" / "contract"


def recorded(name: str):
    return json.loads((RECORDED / f"{name}.json").read_text())


def kinds(messages, client):
    return [m["msg"].get("type", "binary") for m in messages if m["client"] == client and
            m["msg"].get("type") != "status"]


@pytest.fixture
async def sim():
    server = SimServer(step_delay=0.01)
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("name", sorted(TRACES))
async def test_who_gets_which_message(sim, name):
    _, messages = await trace(sim.url, TRACES[name]("sim-recorder"), "sim-recorder")
    real = recorded(name)
    for client in ("submitter", "bystander"):
        assert kinds(messages, client) == kinds(real, client), client


async def test_rest_answers_have_the_recorded_status_and_shape(sim):
    prompt_id, _ = await trace(sim.url, TRACES["ws_own_prompt"]("sim-recorder"), "sim-recorder")
    for name, mine in (await answers(sim.url, prompt_id, "sim-recorder")).items():
        real = recorded(name)
        assert mine["status"] == real["status"], name
        assert key_shape(mine["body"]) == key_shape(real["body"]), name
        if name in ("job_unknown", "jobs_bad_status"):
            assert mine["body"] == real["body"], name
        if "allow" in real["headers"]:
            assert mine["headers"]["allow"] == real["headers"]["allow"], name
