"""The TUI never tells its users about CLI flags: a need the core names becomes a setting or a key."""

from __future__ import annotations

import json

from textual.widgets import Log

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.config import Settings
from pistachio_tui.fix.flow import FixOptions
from pistachio_tui.remedies import Need
from pistachio_tui.sim.server import SimServer
from pistachio_tui.ui.fix.view import ChooseModel, FixView
from pistachio_tui.ui.remedies import ui_remedy
from pistachio_tui.workflow.load import load_workflow
from tests.fix.file_server import FileServer, fake_model
from tests.fix.workflows import CHECKPOINT_ONLY_NODES, MODELS, fix_workflow
from tests.ui_views.harness import ViewApp, until


def test_every_need_has_words_without_a_flag(tmp_path):
    for need in Need:
        assert "--" not in ui_remedy(need, tmp_path / "settings.toml")


async def test_a_server_without_manager_asks_for_the_comfy_dir_setting_not_a_flag(tmp_path):
    files = FileServer(files={name: fake_model(1000) for name, _ in MODELS})
    sim = SimServer(step_delay=0.001, manager=False, models_dir=tmp_path / "models")
    await files.start()
    await sim.start()
    workflow = load_workflow(json.dumps(fix_workflow(files.url, CHECKPOINT_ONLY_NODES, MODELS[:1])).encode(),
                             "ckpt.json")
    settings = Settings(path=tmp_path / "settings.toml")
    options = FixOptions(poll_interval=0.02, hf_search=False, state_dir=tmp_path / "state")
    try:
        async with ComfyClient(sim.url) as client:
            app = ViewApp(lambda: FixView(settings, client, workflow, options=options))
            async with app.run_test(size=(100, 30)) as pilot:
                view = app.query_one(FixView)
                await pilot.press("s")
                await until(pilot, lambda: isinstance(app.screen, ChooseModel) or view.outcome is not None,
                            "the model choice")
                if isinstance(app.screen, ChooseModel):
                    await pilot.press("enter")
                await until(pilot, lambda: view.outcome is not None, "the end of the run")
                log = "\n".join(app.query_one("#fix-log", Log).lines)
    finally:
        await sim.stop()
        await files.stop()
    assert view.outcome.needs == [Need.COMFY_DIR]
    assert "--" not in log, log
    assert ('set the server\'s ComfyUI folder on this machine (ctrl+p, "Set the ComfyUI folder"; it is kept as '
            f"comfy_dir in the settings file {settings.path}), then press s to fix again") in log
