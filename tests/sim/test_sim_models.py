"""Model folders: defaults, add_model, and files found live under models_dir."""

from __future__ import annotations

import httpx

from pistachio_tui.sim.catalog import model_folder_for
from pistachio_tui.sim.server import SimServer
from tests.conftest import load_fixture


async def test_models_dir_is_read_live(tmp_path):
    server = SimServer(step_delay=0.001, models={}, models_dir=tmp_path)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/models/checkpoints")).json() == []
            (tmp_path / "checkpoints" / "sdxl").mkdir(parents=True)
            (tmp_path / "checkpoints" / "sdxl" / "sd_xl_base_1.0.safetensors").write_bytes(b"x")
            (tmp_path / "checkpoints" / "half.safetensors.part").write_bytes(b"x")
            assert (await http.get("/models/checkpoints")).json() == ["sdxl/sd_xl_base_1.0.safetensors"]
            request = load_fixture("validation_missing_model")["request"]
            request["4"]["inputs"]["ckpt_name"] = "sdxl/sd_xl_base_1.0.safetensors"
            assert (await http.post("/prompt", json={"prompt": request})).status_code == 200
            info = (await http.get("/object_info/CheckpointLoaderSimple")).json()
            assert info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == [
                "sdxl/sd_xl_base_1.0.safetensors"]
    finally:
        await server.stop()


async def test_add_model_makes_a_missing_model_valid(sim):
    request = load_fixture("validation_missing_model")["request"]
    async with httpx.AsyncClient(base_url=sim.url) as http:
        rejected = await http.post("/prompt", json={"prompt": request})
        assert rejected.status_code == 400
        assert rejected.json()["node_errors"]["4"]["errors"][0]["type"] == "value_not_in_list"
        sim.add_model("checkpoints", "sd_xl_base_1.0.safetensors")
        assert (await http.post("/prompt", json={"prompt": request})).status_code == 200


async def test_new_style_combo_pickers_are_filled(sim):
    sim.add_model("upscale_models", "4x-UltraSharp.pth")
    async with httpx.AsyncClient(base_url=sim.url) as http:
        spec = (await http.get("/object_info/UpscaleModelLoader")).json()["UpscaleModelLoader"]
    combo = spec["input"]["required"]["model_name"]
    assert combo[0] == "COMBO" and "4x-UltraSharp.pth" in combo[1]["options"]


def test_loader_inputs_map_to_folders():
    assert model_folder_for("CheckpointLoaderSimple", "ckpt_name") == "checkpoints"
    assert model_folder_for("LoraLoader", "lora_name") == "loras"
    assert model_folder_for("VAELoader", "vae_name") == "vae"
    assert model_folder_for("UNETLoader", "unet_name") == "diffusion_models"
    assert model_folder_for("DualCLIPLoader", "clip_name2") == "text_encoders"
    assert model_folder_for("CLIPVisionLoader", "clip_name") == "clip_vision"
    assert model_folder_for("UpscaleModelLoader", "model_name") == "upscale_models"
    assert model_folder_for("KSampler", "sampler_name") is None
