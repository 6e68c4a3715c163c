"""Command palette actions and themes (bundled TOML, user files, choice saved)."""

from __future__ import annotations

import pytest

from pistachio_tui.config import config_dir, load_settings
from pistachio_tui.ui.themes import bundled_themes_dir, discover_themes

from .helpers import make_app


async def run_palette(pilot, text: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*text)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.pause(0.2)


async def test_palette_goes_to_a_screen(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await run_palette(pilot, "Go to GPU")
        assert app.current_mode == "gpu"


async def test_palette_switches_theme_and_saves_it(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == "pistachio"
        await run_palette(pilot, "Theme: ember")
        assert app.theme == "ember"
    assert load_settings(app.settings.path).theme == "ember"


def test_bundled_and_user_themes(tmp_path):
    themes, problems = discover_themes()
    names = {t.name for t in themes}
    assert {"pistachio", "pistachio-cream", "midnight-gpu", "ember"} <= names
    assert not problems
    user = config_dir() / "themes"
    user.mkdir(parents=True)
    (user / "mine.toml").write_text('name = "mine"\nprimary = "#ff00ff"\ndark = false\n')
    (user / "broken.toml").write_text("name = \n")
    # The lenient `toml` package took this unterminated array as an empty one.
    (user / "unclosed.toml").write_text('name = "unclosed"\nprimary = "#ff00ff"\nextra = [\n')
    themes, problems = discover_themes([bundled_themes_dir(), user])
    assert "mine" in {t.name for t in themes}
    assert sorted(p.split(":")[0] for p in problems) == ["broken.toml", "unclosed.toml"]


async def test_palette_offers_the_hosted_views_actions(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("6")
        await run_palette(pilot, "Training: open run folder")
        assert app.focused is not None and app.focused.id == "train-path"


@pytest.mark.parametrize(("remedy", "asked"), [("SET_COMFY_DIR", "ComfyUI folder on this machine"),
                                              ("SET_DIFFUSION_PIPE_DIR", "the folder with train.py")])
async def test_the_palette_commands_the_remedies_name_ask_for_their_folder(tmp_path, remedy, asked):
    from pistachio_tui.ui import remedies
    from pistachio_tui.ui.dialogs import AskScreen

    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        # The remedy says: ctrl+p, "<the command>".
        await run_palette(pilot, getattr(remedies, remedy).split('"')[1])
        assert isinstance(app.screen, AskScreen)
        assert asked in app.screen.question
