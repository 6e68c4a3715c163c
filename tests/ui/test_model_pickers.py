"""Model fields pick from the server's lists with type-to-filter; an input image can be uploaded;
a workflow folder can be added from the Workflows screen."""

from __future__ import annotations

import io

from PIL import Image
from textual.widgets import Input, OptionList, Tree

from pistachio_tui.comfy.session import CONNECTED
from pistachio_tui.config import load_settings
from pistachio_tui.ui.dialogs import AskScreen
from pistachio_tui.ui.widgets.choice import ChoiceInput, matches
from pistachio_tui.ui.workflows.sources import bundled_dir

from .helpers import make_app, until
from .test_queue_flow import open_by_path, sim_workflow


def field(screen, name: str) -> ChoiceInput:
    index = next(i for i, p in enumerate(screen.preview.params) if p.name == name)
    widget = screen.query_one(f"#param-{index}")
    assert isinstance(widget, ChoiceInput), name
    return widget


def test_filter_matches_every_word_anywhere():
    names = ["sdxl/juggernaut_XL.safetensors", "pony/[Pony] style.safetensors", "add_detail_xl.safetensors"]
    assert matches(names, "xl detail") == ["add_detail_xl.safetensors"]
    assert matches(names, "PONY") == ["pony/[Pony] style.safetensors"]


async def test_checkpoint_and_sampler_are_picked_from_the_servers_lists(sim, tmp_path):
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        screen = await open_by_path(pilot, sim_workflow(tmp_path))
        await until(pilot, lambda: bool(list(screen.query(ChoiceInput))))
        ckpt = field(screen, "ckpt_name")
        assert "dreamshaper_8.safetensors" in ckpt.choices
        assert "euler" in field(screen, "sampler_name").choices
        assert "karras" in field(screen, "scheduler").choices
        ckpt.focus()
        await pilot.press("down")
        await until(pilot, lambda: isinstance(app.focused, Input) and app.focused.id == "choice-filter")
        await pilot.press(*"dream")
        options = app.screen.query_one(OptionList)
        await until(pilot, lambda: options.option_count == 1)
        await pilot.press("enter")
        assert ckpt.value == "dreamshaper_8.safetensors" and app.focused is ckpt
        await pilot.press("escape", "g")
        session = app.manager.active
        await until(pilot, lambda: len(session.history) == 1)
        entry = next(iter(session.history.values()))
        assert any(n["inputs"].get("ckpt_name") == "dreamshaper_8.safetensors" for n in entry.prompt.values())


async def test_an_input_image_is_uploaded_and_picked(sim, tmp_path):
    picture = tmp_path / "mine.png"
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    picture.write_bytes(buffer.getvalue())
    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        screen = await open_by_path(pilot, bundled_dir() / "sdxl_img2img.json")
        await until(pilot, lambda: bool(list(screen.query(ChoiceInput))))
        image = field(screen, "image")
        assert image.upload
        image.focus()
        await pilot.press("down")
        await until(pilot, lambda: isinstance(app.focused, Input) and app.focused.id == "choice-filter")
        await pilot.press("ctrl+u")
        await until(pilot, lambda: isinstance(app.screen, AskScreen))
        app.screen.query_one(Input).value = str(picture)
        await pilot.press("enter")
        await until(pilot, lambda: image.value == "mine.png")
        assert sim.files.get("input", "", "mine.png") == picture.read_bytes()


async def test_a_workflow_folder_is_added_and_saved(tmp_path):
    folder = tmp_path / "my flows"
    folder.mkdir()
    (folder / "portrait.json").write_bytes(sim_workflow(tmp_path).read_bytes())
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "a")
        assert isinstance(app.screen, AskScreen)
        app.screen.query_one(Input).value = str(folder)
        await pilot.press("enter")
        tree = app.screen.query_one(Tree)
        await until(pilot, lambda: any(str(n.label) == "portrait" for n in tree.root.children[1].children[0].children))
    assert load_settings(app.settings.path).workflow_dirs == [folder]
