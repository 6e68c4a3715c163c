"""Colour themes from TOML files: the bundled ``themes/`` folder, then the user's own."""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.theme import Theme

from pistachio_tui.bundled import bundled
from pistachio_tui.config import config_dir


class ThemeFileError(Exception):
    """A theme file cannot be used; the message names the file and the problem."""


def bundled_themes_dir() -> Path:
    return bundled("themes")


def user_themes_dir() -> Path:
    return config_dir() / "themes"


def load_theme_file(path: Path) -> Theme:
    """One theme from a TOML file with ``name``, colour keys and ``dark``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ThemeFileError(f"{path.name}: cannot read the theme ({exc})") from None
    name = data.get("name")
    if not isinstance(name, str) or not data.get("primary"):
        raise ThemeFileError(f"{path.name}: a theme needs at least `name` and `primary`")

    def colour(key: str) -> str | None:
        return str(data[key]) if key in data else None

    return Theme(
        name=name, primary=str(data["primary"]), secondary=colour("secondary"), accent=colour("accent"),
        background=colour("background"), surface=colour("surface"), panel=colour("panel"),
        foreground=colour("foreground"), warning=colour("warning"), error=colour("error"),
        success=colour("success"), dark=bool(data.get("dark", True)),
    )


def discover_themes(dirs: list[Path] | None = None) -> tuple[list[Theme], list[str]]:
    """Every theme in ``dirs`` (bundled, then user: a user theme overrides one of the same name).

    Returns the themes and one message per file that could not be loaded.
    """
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for folder in dirs if dirs is not None else [bundled_themes_dir(), user_themes_dir()]:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ThemeFileError as exc:
                problems.append(str(exc))
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems
