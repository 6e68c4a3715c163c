"""Shipped folders are found in a checkout and in a regular install."""

from __future__ import annotations

from pistachio_tui.bundled import SHARE, bundled


def test_a_checkout_uses_its_own_folders(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "themes").mkdir()
    (tmp_path / "prefix" / SHARE / "themes").mkdir(parents=True)
    assert bundled("themes", checkout=tmp_path, prefixes=[tmp_path / "prefix"]) == tmp_path / "themes"


def test_an_install_uses_the_shared_copy_not_a_stray_site_packages_folder(tmp_path):
    site_packages = tmp_path / "site-packages"
    (site_packages / "workflows").mkdir(parents=True)  # some other package's folder
    user, venv = tmp_path / "user", tmp_path / "venv"
    (user / SHARE / "workflows").mkdir(parents=True)
    assert bundled("workflows", checkout=site_packages, prefixes=[venv, user]) == user / SHARE / "workflows"


def test_nothing_installed_gives_an_empty_place_not_an_error(tmp_path):
    assert not bundled("themes", checkout=tmp_path, prefixes=[tmp_path / "none"]).exists()


def test_this_checkout_ships_themes_and_workflows():
    assert (bundled("themes") / "pistachio.toml").is_file()
    assert any(bundled("workflows").glob("*.json"))
