"""A broken server entry in the settings file never keeps the app from starting."""

from __future__ import annotations

from pistachio_tui.config import load_settings
from pistachio_tui.ui.app import PistachioApp


async def test_the_app_starts_with_a_broken_entry_and_says_which_line(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('[[servers]]\nname = "typo"\nurl = "http://[::1"\n\n'
                    '[[servers]]\nname = "ok"\nurl = "http://127.0.0.1:9"\n')
    app = PistachioApp(load_settings(path))
    toasts: list[tuple[str, str]] = []
    app.notify = lambda message, *, title="", severity="information", **_: toasts.append((title, message))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert [s.name for s in app.settings.servers] == ["ok"]
    [(title, message)] = [t for t in toasts if t[0] == "Settings"]
    assert "line 3" in message and "skipped" in message


async def test_the_comfy_folder_is_set_from_the_app_asked_again_when_wrong_and_saved_with_the_comments(tmp_path):
    from textual.widgets import Input, Label

    from pistachio_tui.ui.dialogs import AskScreen

    path = tmp_path / "settings.toml"
    path.write_text('# my servers\ntheme = "pistachio"\n')
    comfy = tmp_path / "[Pony] ComfyUI"
    (comfy / "models").mkdir(parents=True)
    app = PistachioApp(load_settings(path))
    async with app.run_test(size=(80, 24)) as pilot:
        app.action_set_folder("comfy_dir")
        await pilot.pause()
        assert isinstance(app.screen, AskScreen)
        app.screen.query_one(Input).value = str(comfy.parent / "[b]odd")
        await pilot.press("enter")
        await pilot.pause()
        # Asked again, saying why, with what was typed kept for correcting.
        assert isinstance(app.screen, AskScreen)
        assert f"{tmp_path}/[b]odd is not a folder" in str(app.screen.query_one(Label).render())
        assert app.screen.query_one(Input).value == str(comfy.parent / "[b]odd")
        app.screen.query_one(Input).value = str(comfy)
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, AskScreen)
    assert app.settings.comfy_dir == comfy
    text = path.read_text()
    assert text.startswith("# my servers\n") and f'comfy_dir = "{comfy}"' in text
    assert load_settings(path).comfy_dir == comfy
