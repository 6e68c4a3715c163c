"""Loading every workflow format, and precise errors for broken input."""

from __future__ import annotations

import io
import json
import zipfile
import zlib

import pytest

from pistachio_tui.workflow.convert import load_prompt_for_run
from pistachio_tui.workflow.imagemeta import png_text
from pistachio_tui.workflow.load import (
    WorkflowError,
    load_workflow,
    load_workflows,
)
from tests.workflow.helpers import object_info, png_chunk, png_fixture, png_with_chunks, tiny_ui, webp_with_exif


def _raw_png_chunks(data: bytes) -> dict[str, str]:
    """The fixture's tEXt chunks, decoded independently of the code under test."""
    out, pos = {}, 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        ctype, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if ctype == b"tEXt":
            key, _, text = body.partition(b"\0")
            out[key.decode()] = text.decode("latin-1")
        pos += 12 + length
    return out


def test_png_fixture_reads_back_both_chunks_exactly():
    data = png_fixture()
    raw = _raw_png_chunks(data)
    assert png_text(data) == raw
    wf = load_workflow(data, name="out")
    assert wf.format == "ui"
    assert wf.ui == json.loads(raw["workflow"])
    assert wf.api == json.loads(raw["prompt"])


def test_png_ztxt_and_itxt_chunks():
    ui = json.dumps(tiny_ui())
    prompt = json.dumps({"1": {"class_type": "EmptyImage", "inputs": {}}})
    ztxt = png_chunk(b"zTXt", b"workflow\0\0" + zlib.compress(ui.encode()))
    itxt = png_chunk(b"iTXt", b"prompt\0\x01\0\0\0" + zlib.compress(prompt.encode()))
    wf = load_workflow(png_with_chunks(ztxt, itxt))
    assert wf.ui == json.loads(ui) and wf.api == json.loads(prompt)


def test_webp_exif_workflow_and_prompt():
    ui = tiny_ui()
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}}
    data = webp_with_exif({0x010F: "workflow:" + json.dumps(ui), 0x0110: "prompt:" + json.dumps(prompt)})
    wf = load_workflow(data)
    assert wf.ui == ui and wf.api == prompt


def test_webp_prompt_only_is_api_format():
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {}}}
    wf = load_workflow(webp_with_exif({0x0110: "prompt:" + json.dumps(prompt)}))
    assert wf.format == "api" and wf.api == prompt


def test_ui_and_api_json_files(tmp_path):
    ui_file = tmp_path / "graph.json"
    ui_file.write_text(json.dumps(tiny_ui()))
    wf = load_workflow(ui_file)
    assert (wf.format, wf.name, wf.source) == ("ui", "graph", str(ui_file))
    assert [(m.name, m.directory, m.node_id) for m in wf.model_refs] == [("sd_xl_base_1.0.safetensors", "checkpoints", "4")]
    api = {"3": {"class_type": "KSampler", "inputs": {"model": ["4", 0], "seed": 1}}}
    api_file = tmp_path / "api.json"
    api_file.write_text(json.dumps({"prompt": api, "client_id": "x"}))
    assert load_workflow(api_file).api == api


def test_widgets_values_as_dict_and_top_level_models():
    ui = tiny_ui()
    ui["nodes"][4]["widgets_values"] = {"width": 640, "height": 480, "batch_size": 2}
    ui["models"] = [{"name": "extra.safetensors", "url": "https://example.org/e", "directory": "loras"}]
    wf = load_workflow(json.dumps(ui).encode())
    assert [m.name for m in wf.model_refs][-1] == "extra.safetensors"
    from pistachio_tui.workflow.convert import to_api
    assert to_api(wf, object_info()).prompt["5"]["inputs"] == {"width": 640, "height": 480, "batch_size": 2}


def test_zip_archive(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/first.json", json.dumps(tiny_ui()))
        zf.writestr("b/second.png", png_fixture())
        zf.writestr("readme.txt", "not a workflow")
    path = tmp_path / "bundle.zip"
    path.write_bytes(buf.getvalue())
    found = load_workflows(path)
    assert [w.name for w in found] == ["first", "second"]
    with pytest.raises(WorkflowError, match="2 workflows"):
        load_workflow(path)


def test_load_prompt_for_run_from_ui_png_and_api(tmp_path):
    oi = object_info()
    ui_file = tmp_path / "ui.json"
    ui_file.write_text(json.dumps(tiny_ui()))
    prompt = load_prompt_for_run(ui_file, oi)
    assert prompt["3"]["inputs"]["seed"] == 42 and prompt["3"]["inputs"]["model"] == ["10", 0]
    assert load_prompt_for_run(png_fixture(), oi) == json.loads(_raw_png_chunks(png_fixture())["prompt"])


@pytest.mark.parametrize(
    ("mutate", "path", "expected"),
    [
        (lambda ui: ui["nodes"][2]["inputs"][0].update(link="x"), "$.nodes[2].inputs[0].link", "an integer"),
        (lambda ui: ui["nodes"][3].update(type=5), "$.nodes[3].type", "a string"),
        (lambda ui: ui["links"].__setitem__(1, [2, 4]), "$.links[1]", "[id, origin_id"),
        (lambda ui: ui["nodes"][0].update(widgets_values="abc"), "$.nodes[0].widgets_values", "an array or an object"),
        (lambda ui: ui.update(nodes={}), "$.nodes", "an array"),
        (lambda ui: ui.update(definitions={"subgraphs": [{"id": "s", "nodes": [1]}]}), "$.definitions.subgraphs[0].nodes[0]", "an object"),
    ],
)
def test_broken_ui_names_path_and_expectation(tmp_path, mutate, path, expected):
    ui = tiny_ui()
    mutate(ui)
    file = tmp_path / "broken.json"
    file.write_text(json.dumps(ui))
    with pytest.raises(WorkflowError) as info:
        load_workflow(file)
    err = info.value
    assert (err.file, err.path) == (str(file), path)
    assert expected in err.expected
    assert str(file) in str(err) and path in str(err)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "an array"),
        (b'{"1": {"inputs": {}}}', "neither a UI workflow"),
        (b'{"1": {"class_type": "X", "inputs": {"a": ["2", "0"]}}}', "not an integer"),
        (b"\x89PNG\r\n\x1a\n", "no ComfyUI metadata"),
        (b"PK\x03\x04garbage", "broken zip"),
        (b"\x80\x81\x00bin", "not UTF-8"),
        (b"\xff\xfe\x00\xd8", "not UTF-8"),
    ],
)
def test_broken_bytes(data, fragment):
    with pytest.raises(WorkflowError, match=fragment):
        load_workflow(data)


def test_utf16_and_bom_json():
    text = json.dumps(tiny_ui())
    assert load_workflow(text.encode("utf-16")).format == "ui"
    assert load_workflow(b"\xef\xbb\xbf" + text.encode()).format == "ui"


def test_missing_file_is_workflow_error(tmp_path):
    with pytest.raises(WorkflowError, match="cannot read"):
        load_workflow(tmp_path / "nope.json")
