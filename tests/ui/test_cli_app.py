"""``pistachio`` / ``pistachio app`` / ``pistachio dashboard``: settings errors and how the app is started."""

from __future__ import annotations

import argparse

from pistachio_tui.cli import build_parser
from pistachio_tui.cli.app import open_app
from pistachio_tui.cli.exit_codes import USAGE
from pistachio_tui.config import config_dir


def test_broken_settings_exit_with_usage_and_a_message(capsys):
    config_dir().mkdir(parents=True, exist_ok=True)
    (config_dir() / "settings.toml").write_text("theme = \n")
    assert open_app(argparse.Namespace(config=None)) == USAGE
    assert "settings.toml" in capsys.readouterr().err


def test_dashboard_and_app_run_the_app_with_the_loaded_settings(monkeypatch):
    calls = []
    monkeypatch.setattr("pistachio_tui.ui.app.run_app",
                        lambda settings, demo_label=None, dashboard=False: calls.append(dashboard) or 0)
    parser = build_parser()
    for argv in (["app"], ["dashboard"]):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
    assert calls == [False, True]
