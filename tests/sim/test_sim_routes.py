"""Every REST route answers with the recorded shapes (and under /api too)."""

from __future__ import annotations

import pytest

from tests.conftest import load_fixture
from tests.sim.sim_helpers import key_shape


@pytest.mark.parametrize("path, fixture", [
    ("/system_stats", "system_stats"),
    ("/features", "features"),
    ("/queue", "queue_idle"),
    ("/prompt", "prompt_get"),
    ("/models", "models"),
    ("/extensions", "extensions"),
    ("/internal/logs/raw", "logs_raw"),
])
async def test_get_routes_have_recorded_shape(http, path, fixture):
    response = await http.get(path)
    assert response.status_code == 200
    assert key_shape(response.json()) == key_shape(load_fixture(fixture)["body"])


@pytest.mark.parametrize("path", ["/system_stats", "/queue", "/object_info/KSampler", "/models/checkpoints"])
async def test_api_prefix_serves_the_same(http, path):
    assert (await http.get("/api" + path)).json() == (await http.get(path)).json()


async def test_exact_bodies(http):
    for path, fixture in (("/queue", "queue_idle"), ("/prompt", "prompt_get"), ("/features", "features"),
                          ("/models", "models"), ("/extensions", "extensions")):
        assert (await http.get(path)).json() == load_fixture(fixture)["body"], path
    stats = (await http.get("/system_stats")).json()
    assert stats["system"]["comfyui_version"] == "0.8.0"
    assert stats["devices"] == load_fixture("system_stats")["body"]["devices"]


async def test_object_info_has_every_recorded_node_and_live_models(sim, http):
    info = (await http.get("/object_info")).json()
    assert len(info) == 570 and {"SlowSteps", "Boom", "KSampler"} <= set(info)
    ckpt = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
    assert ckpt[0] == sorted(sim.models()["checkpoints"])
    one = (await http.get("/object_info/KSampler")).json()
    assert one == {"KSampler": info["KSampler"]}
    assert key_shape(one) == key_shape(load_fixture("object_info_KSampler")["body"])
    assert (await http.get("/object_info/NoSuchNode")).json() == {}


async def test_model_folders_and_files(sim, http):
    assert (await http.get("/models/checkpoints")).json() == sorted(sim.models()["checkpoints"])
    assert (await http.get("/models/controlnet")).json() == []
    assert (await http.get("/models/nonsense")).status_code == 404
    assert (await http.get("/embeddings")).json() == ["easynegative"]


async def test_view_refuses_traversal_like_the_server(http):
    response = await http.get("/view", params={"filename": "../../etc/passwd"})
    recorded = load_fixture("view_traversal")
    assert (response.status_code, response.text) == (recorded["status"], recorded["body"])
    assert (await http.get("/view", params={"filename": "x.png", "subfolder": "../.."})).status_code == 403
    assert (await http.get("/view", params={"filename": "missing.png"})).status_code == 404


async def test_upload_image_then_view_and_pick_it(http):
    files = {"image": ("upload_probe.png", b"\x89PNG fake", "image/png")}
    response = await http.post("/upload/image", files=files)
    assert response.json() == load_fixture("upload_image")["body"]
    again = await http.post("/upload/image", files=files)
    assert again.json()["name"] == "upload_probe (1).png"
    replaced = await http.post("/upload/image", files=files, data={"overwrite": "true"})
    assert replaced.json()["name"] == "upload_probe.png"
    view = await http.get("/view", params={"filename": "upload_probe.png", "type": "input"})
    assert view.content == b"\x89PNG fake"
    options = (await http.get("/object_info/LoadImage")).json()["LoadImage"]["input"]["required"]["image"][0]
    assert "upload_probe (1).png" in options
    assert (await http.post("/upload/image", files={"other": ("a", b"x")})).status_code == 400
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "upload_probe (1).png"}},
              "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["1", 0]}}}
    assert (await http.post("/prompt", json={"prompt": prompt})).status_code == 200


async def test_free_answers_like_the_server(http):
    response = await http.post("/free", json={"unload_models": True, "free_memory": True})
    assert response.status_code == load_fixture("free")["status"]


async def test_malformed_prompt_body_is_a_bare_500(http):
    recorded = load_fixture("validation_malformed_body")
    response = await http.post("/prompt", content=b"{not json", headers={"content-type": "application/json"})
    assert (response.status_code, response.text) == (recorded["status"], recorded["body"])
    response = await http.post("/prompt", json={"prompt": [1, 2]})
    assert response.status_code == 500


@pytest.mark.parametrize("name", ["validation_missing_node", "validation_bad_value", "validation_no_outputs"])
async def test_rejections_over_http(http, name):
    recorded = load_fixture(name)
    response = await http.post("/prompt", json={"prompt": recorded["request"]})
    assert (response.status_code, response.json()) == (recorded["status"], recorded["body"])


async def test_missing_prompt_field(http):
    response = await http.post("/prompt", json={"client_id": "x"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "no_prompt"


async def test_prompt_numbers_count_up_and_ids_can_be_chosen(http):
    prompt = next(iter(load_fixture("success.history").values()))["prompt"][2]
    first = (await http.post("/prompt", json={"prompt": prompt})).json()
    second = (await http.post("/prompt", json={"prompt": prompt, "prompt_id": "mine"})).json()
    assert key_shape(first) == key_shape(load_fixture("success.post_prompt")["body"])
    assert (first["number"], second["number"], second["prompt_id"]) == (0, 1, "mine")


async def test_saved_workflows(http):
    listing = (await http.get("/userdata", params={"dir": "workflows"})).json()
    assert listing == ["sim_probe.json", "sim_txt2img.json"]
    full = (await http.get("/userdata", params={"dir": "workflows", "full_info": "true"})).json()
    assert {entry["path"] for entry in full} == set(listing)
    workflow = (await http.get("/userdata/workflows%2Fsim_txt2img.json")).json()
    assert {node["type"] for node in workflow["nodes"]} >= {"KSampler", "CheckpointLoaderSimple", "SaveImage"}
    assert (await http.get("/userdata/workflows%2Fnope.json")).status_code == 404
    assert (await http.get("/userdata")).status_code == 400
    assert (await http.get("/userdata", params={"dir": "nothing"})).status_code == 404
    saved = await http.post("/userdata/workflows%2Fnew.json", content=b"{}")
    assert saved.json() == "workflows/new.json"
    assert "new.json" in (await http.get("/userdata", params={"dir": "workflows"})).json()


async def test_logs(http):
    raw = (await http.get("/internal/logs/raw")).json()
    assert any("ComfyUI version: 0.8.0" in entry["m"] for entry in raw["entries"])
    assert "Starting server" in (await http.get("/internal/logs")).json()
