"""The demo: its simulator thread, the prompt it keeps running, the models it stocks,
the synthetic training run, and the scratch ComfyUI folder they share."""

import argparse
import asyncio
import time

import pytest
from textual.widgets import DataTable

from pistachio_tui.cli.demo_commands import (
    DEMO_LABEL,
    DEMO_RUN,
    SimThread,
    demo_prompt,
    demo_session,
    keep_busy,
    run_demo,
    stock_bundled_models,
)
from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.ui.app import PistachioApp
from tests.ui.helpers import FAST, until


def test_sim_thread_keeps_a_prompt_running():
    sim = SimThread(step_delay=0.01)
    url = sim.start()
    try:
        prompt = demo_prompt(sim.server.object_info())
        assert {n["class_type"] for n in prompt.values()} >= {"KSampler", "SaveImage"}
        busy = sim.submit(keep_busy(url, prompt, idle_pause=0.05))

        async def history_size():
            async with ComfyClient(url) as client:
                return len(await client.history())

        deadline = time.monotonic() + 20
        while asyncio.run(history_size()) < 2:
            assert time.monotonic() < deadline, "the demo did not keep the simulator busy"
            time.sleep(0.05)
        busy.cancel()
    finally:
        sim.stop()


async def test_demo_server_has_every_model_the_bundled_workflows_use(sim):
    from pistachio_tui.ui.workflows.sources import bundled_dir, workflow_files
    from pistachio_tui.workflow.deps import analyse
    from pistachio_tui.workflow.load import load_workflow

    stocked = stock_bundled_models(sim)
    assert "checkpoints/sd_xl_base_1.0.safetensors" in stocked
    files = workflow_files(bundled_dir())
    assert len(files) >= 5
    for path in files:
        needs = analyse(load_workflow(path), sim.object_info(), sim.models())
        assert needs.missing_models == [], path.name


def test_demo_settings_use_the_simulators_comfy_folder_and_the_scratch_dir_goes_away():
    with demo_session(step_delay=0.01, autorun=False, train_step_seconds=0.01) as demo:
        assert demo.settings.comfy_dir == demo.comfy_dir
        assert demo.sim.server.models_dir == demo.comfy_dir / "models"
        assert (demo.comfy_dir / "models" / "loras").is_dir()
        assert demo.comfy_dir.is_relative_to(demo.scratch) and demo.run_dir.is_relative_to(demo.scratch)
        assert demo.settings.path.parent == demo.scratch
        assert "SIMULATED" in demo.run_dir.name
        assert (demo.run_dir / "train.log").read_text().startswith("caching latents")
    assert not demo.scratch.exists()


def test_scratch_dir_goes_away_when_the_app_fails():
    with pytest.raises(RuntimeError, match="app crashed"), \
            demo_session(step_delay=0.01, autorun=False, train_step_seconds=0.01) as demo:
        raise RuntimeError("app crashed")
    assert not demo.scratch.exists()


def test_run_demo_opens_the_app_on_the_demo_and_cleans_up(monkeypatch):
    seen = {}

    def fake_run_app(settings, demo_label=None, dashboard=False, initial_run=None):
        seen.update(settings=settings, label=demo_label, run=initial_run, run_there=initial_run.is_dir())
        return 0

    monkeypatch.setattr("pistachio_tui.ui.app.run_app", fake_run_app)
    args = argparse.Namespace(step_delay=0.01, dashboard=False, no_autorun=True)
    assert run_demo(args) == 0
    assert seen["label"] == DEMO_LABEL and seen["run_there"]
    assert seen["settings"].servers[0].name == "demo (simulated)"
    assert not seen["run"].exists() and not seen["settings"].comfy_dir.exists()


async def test_demo_run_trains_on_the_training_screen_and_promotes_into_the_simulator():
    with demo_session(step_delay=0.01, autorun=False, train_step_seconds=0.01) as demo:
        app = PistachioApp(demo.settings, demo_label=DEMO_LABEL, initial_run=demo.run_dir,
                           health_interval=0.1, backoff=FAST)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("6")
            epochs = app.screen.query_one("#train-epochs", DataTable)
            await until(pilot, lambda: epochs.row_count >= 2)
            assert DEMO_RUN in str(app.screen.query_one("#train-summary").render())
            assert not app.screen.query_one("#training-view").state.errors, "the demo run must look healthy"
            loras = demo.comfy_dir / "models" / "loras"
            before = set(loras.iterdir())
            await pilot.press("p")
            await until(pilot, lambda: set(loras.iterdir()) - before)
            [promoted] = set(loras.iterdir()) - before
            assert DEMO_RUN in promoted.name and promoted.suffix == ".safetensors"
            async with ComfyClient(demo.sim.url) as client:
                served = await client.models("loras")
            assert promoted.name in served
