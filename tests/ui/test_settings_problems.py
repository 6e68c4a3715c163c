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
