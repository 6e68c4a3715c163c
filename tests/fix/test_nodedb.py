"""Node class → pack lookup on the real lists bundled with comfyui-manager."""

from __future__ import annotations

from pistachio_tui.fix.nodedb import NodeDB, manager_data_dir


def test_bundled_files_are_found_without_importing_the_package():
    import sys

    folder = manager_data_dir()
    assert folder is not None and (folder / "extension-node-map.json").is_file()
    assert "comfyui_manager" not in sys.modules


def test_exact_class_resolves_to_its_pack():
    db = NodeDB.from_manager_package()
    matches = db.packs_for("UltimateSDUpscale")
    assert matches[0].exact
    pack = matches[0].pack
    assert pack.url == "https://github.com/ssitu/ComfyUI_UltimateSDUpscale"
    assert pack.repo_name == "ComfyUI_UltimateSDUpscale"
    assert pack.title == "UltimateSDUpscale" and pack.install_type == "git-clone"
    assert NodeDB.from_manager_package() is db


def test_pattern_rule_matches_unlisted_class():
    db = NodeDB.from_manager_package()
    matches = db.packs_for("DF_Some_Future_Node")
    assert [m.pack.url for m in matches] == ["https://github.com/Derfuu/Derfuu_ComfyUI_ModdedNodes"]
    assert not matches[0].exact


def test_unknown_class_has_no_pack():
    assert NodeDB.from_manager_package().packs_for("NoSuchNodeAnywhere_12345") == []


def test_ranking_exact_over_pattern_then_stars():
    node_map = {
        "https://github.com/a/low": [["Shared"], {"title_aux": "Low"}],
        "https://github.com/b/high": [["Shared"], {"title_aux": "High"}],
        "https://github.com/c/pattern": [[], {"title_aux": "Pattern", "nodename_pattern": "^Sha"}],
    }
    stats = {"https://github.com/a/low": {"stars": 3}, "https://github.com/b/high": {"stars": 900}}
    node_list = [{"reference": "https://github.com/b/high", "title": "High pack", "id": "high",
                  "install_type": "git-clone", "files": ["https://github.com/b/high"], "pip": ["numpy"]}]
    db = NodeDB(node_map, node_list, stats)
    ranked = db.packs_for("Shared")
    assert [m.pack.url for m in ranked] == [
        "https://github.com/b/high", "https://github.com/a/low", "https://github.com/c/pattern"]
    assert ranked[0].pack.pip == ("numpy",) and ranked[0].pack.id == "high"
    assert db.resolve(["Shared", "Nope"])["Nope"] == []


def test_live_mappings_keyed_by_registry_id_get_their_repository():
    mappings = {
        "comfyui_ultimatesdupscale": [["UltimateSDUpscale", "UltimateSDUpscaleNoUpscale"], {"title_aux": "USDU"}],
        "https://github.com/example/ComfyUI-BrokenPack": [["BrokenPackNode"], {"title_aux": "Broken"}],
    }
    db = NodeDB.from_mappings(mappings)
    pack = db.packs_for("UltimateSDUpscale")[0].pack
    assert pack.registry_id == "comfyui_ultimatesdupscale"
    assert pack.url == "https://github.com/ssitu/ComfyUI_UltimateSDUpscale"
    broken = db.packs_for("BrokenPackNode")[0].pack
    assert broken.registry_id is None and broken.repo_name == "ComfyUI-BrokenPack"
