"""``pistachio workflow inspect`` and ``convert``: files, object_info files and a live (simulated) server."""

from __future__ import annotations

import json

import pytest

from pistachio_tui.cli import build_parser, exit_codes
from pistachio_tui.cli.workflow_commands import convert_command, inspect_command
from tests.conftest import FIXTURES_DIR, ORACLE_DIR, load_fixture
from tests.workflow.helpers import tiny_ui

OBJECT_INFO_FILE = FIXTURES_DIR / "object_info.json"


def _args(*argv):
    return build_parser().parse_args(["workflow", *argv])


@pytest.fixture
def ui_file(tmp_path):
    path = tmp_path / "fox.json"
    path.write_text(json.dumps(tiny_ui()))
    return path


async def test_inspect_json_with_object_info_file(ui_file, capsys):
    code = await inspect_command(_args("inspect", str(ui_file), "--object-info", str(OBJECT_INFO_FILE), "--json"))
    assert code == exit_codes.OK
    report = json.loads(capsys.readouterr().out)
    assert (report["format"], report["nodes"], report["missing_nodes"]) == ("ui", 8, [])
    models = {m["name"]: (m["folder"], m["present"]) for m in report["models"]}
    assert models == {"sd_xl_base_1.0.safetensors": ("checkpoints", False), "detail.safetensors": ("loras", False)}
    assert {p["kind"] for p in report["params"]} >= {"seed", "steps", "prompt", "lora_strength_model"}


async def test_inspect_text_without_server(ui_file, capsys):
    assert await inspect_command(_args("inspect", str(ui_file))) == exit_codes.OK
    out = capsys.readouterr().out
    assert "missing nodes: not checked" in out and "checkpoints/sd_xl_base_1.0.safetensors" in out


async def test_inspect_against_simulated_server(sim, tmp_path, capsys):
    sim.add_model("checkpoints", "sd_xl_base_1.0.safetensors")
    ui = tiny_ui()
    ui["nodes"].append({"id": 30, "type": "NoSuchNode", "mode": 0, "inputs": [], "outputs": [], "widgets_values": []})
    path = tmp_path / "w.json"
    path.write_text(json.dumps(ui))
    code = await inspect_command(_args("inspect", str(path), "--server", sim.url, "--json"))
    assert code == exit_codes.OK
    report = json.loads(capsys.readouterr().out)
    assert report["missing_nodes"] == ["NoSuchNode"]
    presence = {m["name"]: m["present"] for m in report["models"]}
    assert presence == {"sd_xl_base_1.0.safetensors": True, "detail.safetensors": False}


async def test_inspect_unreachable_server_and_bad_file(ui_file, tmp_path):
    assert await inspect_command(_args("inspect", str(ui_file), "--server", "http://127.0.0.1:9")) == exit_codes.UNREACHABLE
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert await inspect_command(_args("inspect", str(bad))) == exit_codes.REJECTED


async def test_convert_one_file_to_output_file(tmp_path):
    out = tmp_path / "prompt.json"
    source = ORACLE_DIR / "default.ui.json"
    code = await convert_command(_args("convert", str(source), "--object-info", str(OBJECT_INFO_FILE), "-o", str(out)))
    assert code == exit_codes.OK
    assert json.loads(out.read_text()) == json.loads((ORACLE_DIR / "default.api.json").read_text())


async def test_convert_several_files_from_server(sim, tmp_path, ui_file, capsys):
    out = tmp_path / "out"
    png = tmp_path / "image.png"
    png.write_bytes((FIXTURES_DIR / "success_output.png").read_bytes())
    code = await convert_command(_args("convert", str(ui_file), str(png), "--server", sim.url, "-o", str(out), "--json"))
    assert code == exit_codes.OK
    assert sorted(p.name for p in out.iterdir()) == ["fox.api.json", "image.api.json"]
    summary = json.loads(capsys.readouterr().out)
    assert [r["ok"] for r in summary["results"]] == [True, True]


async def test_convert_keeps_going_and_reports_unreadable(tmp_path, ui_file):
    out = tmp_path / "out"
    broken = tmp_path / "broken.json"
    broken.write_text('{"nodes": 3}')
    code = await convert_command(_args("convert", str(broken), str(ui_file), "--object-info", str(OBJECT_INFO_FILE), "-o", str(out)))
    assert code == exit_codes.REJECTED
    assert [p.name for p in out.iterdir()] == ["fox.api.json"]


async def test_convert_write_failure_is_failed(tmp_path, ui_file):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = await convert_command(_args("convert", str(ui_file), "--object-info", str(OBJECT_INFO_FILE), "-o", str(blocker / "x.json")))
    assert code == exit_codes.FAILED


def test_convert_requires_a_node_source():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["workflow", "convert", "x.json", "-o", "y"])


async def test_object_info_file_must_hold_definitions(tmp_path, ui_file, capsys):
    path = tmp_path / "oi.json"
    path.write_text(json.dumps(load_fixture("models")))
    code = await convert_command(_args("convert", str(ui_file), "--object-info", str(path), "-o", str(tmp_path / "o.json")))
    assert code == exit_codes.USAGE
    assert "not an /object_info answer" in capsys.readouterr().err


async def test_convert_archive_with_several_workflows(tmp_path, ui_file):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("one/fox.json", ui_file.read_text())
        zf.writestr("two.png", (FIXTURES_DIR / "success_output.png").read_bytes())
    archive = tmp_path / "pack.zip"
    archive.write_bytes(buf.getvalue())
    out = tmp_path / "out"
    code = await convert_command(_args("convert", str(archive), str(ui_file), "--object-info", str(OBJECT_INFO_FILE), "-o", str(out)))
    assert code == exit_codes.OK
    assert sorted(p.name for p in out.iterdir()) == ["fox-2.api.json", "fox.api.json", "two.api.json"]


async def test_inspect_archive_lists_every_workflow(tmp_path, ui_file, capsys):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.json", ui_file.read_text())
        zf.writestr("b.png", (FIXTURES_DIR / "success_output.png").read_bytes())
    archive = tmp_path / "pack.zip"
    archive.write_bytes(buf.getvalue())
    code = await inspect_command(_args("inspect", str(archive), "--object-info", str(OBJECT_INFO_FILE), "--json"))
    assert code == exit_codes.OK
    reports = json.loads(capsys.readouterr().out)["workflows"]
    assert [(r["name"], r["format"]) for r in reports] == [("a", "ui"), ("b", "ui")]


async def test_convert_never_overwrites_its_input(ui_file, capsys):
    before = ui_file.read_bytes()
    code = await convert_command(_args("convert", str(ui_file), "--object-info", str(OBJECT_INFO_FILE),
                                       "-o", str(ui_file), "--force"))
    assert code == exit_codes.FAILED
    assert ui_file.read_bytes() == before
    assert "one of the inputs" in capsys.readouterr().err


async def test_convert_asks_for_force_before_replacing_an_output(ui_file, tmp_path, capsys):
    out = tmp_path / "out.json"
    out.write_text("keep me")
    args = ("convert", str(ui_file), "--object-info", str(OBJECT_INFO_FILE), "-o", str(out))
    assert await convert_command(_args(*args)) == exit_codes.FAILED
    assert out.read_text() == "keep me" and "--force" in capsys.readouterr().err
    assert await convert_command(_args(*args, "--force")) == exit_codes.OK
    assert "class_type" in out.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no temporary file is left"


async def test_convert_error_names_the_file_once(tmp_path, capsys):
    bad = tmp_path / "f.json"
    bad.write_text(json.dumps({"nodes": [{"id": 1, "type": "KSampler", "inputs": "oops"}], "links": []}))
    await convert_command(_args("convert", str(bad), "--object-info", str(OBJECT_INFO_FILE),
                                "-o", str(tmp_path / "o.json")))
    err = capsys.readouterr().err
    assert err.count(str(bad)) == 1, err
