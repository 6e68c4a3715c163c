"""Text from files and servers is shown as it is, never read as markup.

Model, file, node and server names with brackets (``[Pony] style.safetensors``)
keep them, and ``[/x]`` in an error message never raises ``MarkupError``.
"""

from __future__ import annotations

import json

import pytest
from textual.content import Content
from textual.widgets import DataTable, OptionList, Tree

from pistachio_tui.comfy.session import CONNECTED
from pistachio_tui.config import ServerConfig, Settings
from pistachio_tui.sim import catalog
from pistachio_tui.ui.app import PistachioApp
from pistachio_tui.ui.format import esc
from pistachio_tui.ui.workflows.screen import WorkflowsScreen

from .helpers import FAST, until

NASTY = ["[Pony] style.safetensors", "a [/x] b", "[b]not bold", "[@click=app.quit]q", "path\\[x]"]
SERVER = "[Pony] studio [/x]"
MODEL = "[Pony] style [b].safetensors"
TITLE = "[Pony] decode [/x]"
SAMPLER = "[Pony] sampler [/x]"
WORKFLOW = "[Pony] flow [i]"
FAILURE = "out of memory [/x] in [Pony] layer"


@pytest.mark.parametrize("text", NASTY)
def test_escaped_text_reads_back_as_written(text):
    assert Content.from_markup(esc(text)).plain == text


def bracketed_workflow(folder):
    data = json.loads(catalog.seed_workflows()["sim_txt2img.json"])
    for node in data["nodes"]:
        if node["type"] == "CheckpointLoaderSimple":
            node["widgets_values"] = [MODEL]
        elif node["type"] == "VAEDecode":
            node["title"] = TITLE
        elif node["type"] == "KSampler":
            node["title"] = SAMPLER
        elif node["type"] == "SaveImage":
            node["widgets_values"] = ["[Pony] out"]
    path = folder / f"{WORKFLOW}.json"
    path.write_text(json.dumps(data))
    return path


def plain(widget) -> str:
    return str(widget.render())


def cells(table: DataTable) -> list[str]:
    return [str(getattr(cell, "plain", cell)) for row in range(table.row_count) for cell in table.get_row_at(row)]


async def test_bracketed_names_survive_every_screen(sim, tmp_path, monkeypatch):
    stats = catalog.recorded_system_stats()
    stats["system"]["comfyui_version"] = "0.8.0 [dev] [/x]"
    monkeypatch.setattr(catalog, "recorded_system_stats", lambda: json.loads(json.dumps(stats)))
    sim.add_model("checkpoints", MODEL)
    sim.fail_class("VAEDecode", FAILURE)
    folder = tmp_path / "flows"
    folder.mkdir()
    path = bracketed_workflow(folder)
    settings = Settings(servers=[ServerConfig(SERVER, sim.url)], workflow_dirs=[str(folder)],
                        path=tmp_path / "settings.toml")
    app = PistachioApp(settings, health_interval=0.1, backoff=FAST)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        await until(pilot, lambda: app.manager.active.stats is not None)
        await pilot.pause(0.2)
        table = app.screen.query_one("#servers-table", DataTable)
        await until(pilot, lambda: "0.8.0 [dev] [/x]" in cells(table))
        assert SERVER in cells(table)
        assert SERVER in plain(app.screen.query_one("#server-reason"))

        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, WorkflowsScreen)
        labels = [str(node.label) for node in screen.query_one(Tree).root.children[1].children[0].children]
        assert WORKFLOW in labels
        screen.open_workflow(path)
        await until(pilot, lambda: screen.preview is not None)
        summary = plain(screen.query_one("#wf-summary"))
        assert WORKFLOW in summary and MODEL in summary
        params = " ".join(plain(label) for label in screen.query(".param-label"))
        assert f"{SAMPLER} · seed" in params

        await pilot.press("g")
        session = app.manager.active
        await until(pilot, lambda: any(e.outcome == "error" for e in session.history.values()))
        await until(pilot, lambda: any(FAILURE in str(n.message) for n in app._notifications))
        await pilot.press("3")
        history = app.screen.query_one("#history", DataTable)
        await until(pilot, lambda: history.row_count == 1)
        history.focus()
        history.move_cursor(row=0)
        await pilot.pause(0.2)
        detail = plain(app.screen.query_one("#detail-text"))
        assert TITLE in detail and FAILURE in detail

        sim.clear_failures()
        await pilot.press("2")
        await pilot.press("g")
        await until(pilot, lambda: any(e.outcome == "success" for e in session.history.values()))
        await pilot.press("3")
        history = app.screen.query_one("#history", DataTable)
        await until(pilot, lambda: history.row_count == 2)
        ok = next(e for e in session.history.values() if e.outcome == "success")
        history.move_cursor(row=list(session.history).index(ok.prompt_id))
        outputs = app.screen.query_one("#outputs", OptionList)
        await until(pilot, lambda: outputs.option_count > 0)
        assert "[Pony] out" in str(outputs.get_option_at_index(0).prompt)
