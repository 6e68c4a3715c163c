"""The epoch tournament end to end on the simulated ComfyUI: LoRAs staged, one batch, a grid, a promote."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from pistachio_tui.cli import exit_codes, main
from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.config import ServerConfig
from pistachio_tui.sim.server import SimServer
from pistachio_tui.training.replay import TrainerConfig, replay_run
from pistachio_tui.training.tournament import STAGE_FOLDER, pick_contenders, run_tournament, tournament_prompts
from pistachio_tui.training.watch import RunWatcher

WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "sdxl_lora.json"


def comfy_tree(tmp_path: Path) -> Path:
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "loras").mkdir(parents=True)
    (comfy / "models" / "checkpoints").mkdir()
    (comfy / "models" / "checkpoints" / "sd_xl_base_1.0.safetensors").write_bytes(b"x")
    return comfy


def test_contenders_and_prompts(tmp_path):
    run_dir = replay_run(tmp_path / "out", TrainerConfig(epochs=6, steps_per_epoch=4), lambda s: abs(s - 12) + 1)
    state = RunWatcher(run_dir).poll()
    assert pick_contenders(state, around=1) == ["epoch2", "epoch3", "epoch4"]
    assert pick_contenders(state, around=5) == [f"epoch{e}" for e in range(1, 7)]
    assert tournament_prompts("pstch", ["a cat", "pstch on a beach"]) == ["pstch, a cat", "pstch on a beach"]
    assert all(p.startswith("pstch, ") for p in tournament_prompts("pstch"))


async def test_tournament_renders_a_grid_on_the_simulator_and_cleans_up(tmp_path):
    run_dir = replay_run(tmp_path / "out", TrainerConfig(epochs=6, steps_per_epoch=4), lambda s: abs(s - 12) + 1)
    comfy = comfy_tree(tmp_path)
    sim = SimServer(step_delay=0.001, models_dir=comfy / "models")
    await sim.start()
    try:
        prompts = tournament_prompts("pstch", ["a portrait", "a street"])
        result = await run_tournament(run_dir, ["epoch2", "epoch3", "epoch4"], prompts, workflow=WORKFLOW,
                                      servers=[ServerConfig("sim", sim.url)], loras_dir=comfy / "models" / "loras",
                                      out_dir=tmp_path / "t")
        async with ComfyClient(sim.url) as client:
            history = await client.history()
    finally:
        await sim.stop()
    assert not result.failed and len(result.images) == 6
    with Image.open(result.sheet) as sheet:
        assert sheet.size == (120 + 2 * 256, 24 + 3 * 256)
    used = set()
    for entry in history.values():
        nodes = entry.prompt[2] if isinstance(entry.prompt, (list, tuple)) else entry.prompt
        for node in nodes.values():
            if node["class_type"] == "LoraLoader":
                used.add(node["inputs"]["lora_name"])
            if node["class_type"] == "KSampler":
                assert node["inputs"]["seed"] == 1234
    assert used == {f"{STAGE_FOLDER}/out_20260820-1000-epoch{e}.safetensors" for e in (2, 3, 4)}
    assert not (comfy / "models" / "loras" / STAGE_FOLDER).exists()  # staged LoRAs removed


async def test_tournament_cli_then_promote_the_choice(tmp_path, capsys):
    run_dir = replay_run(tmp_path / "out", TrainerConfig(epochs=5, steps_per_epoch=4), lambda s: abs(s - 8) + 1)
    comfy = comfy_tree(tmp_path)
    sim = SimServer(step_delay=0.001, models_dir=comfy / "models")
    await sim.start()
    try:
        import argparse

        from pistachio_tui.cli.train_commands import run_tournament_cmd

        args = argparse.Namespace(run=str(run_dir), log=None, json=True, server=[sim.url], workflow=WORKFLOW,
                                  comfy=comfy, prompt=["a portrait"], checkpoint=None, around=1, seed=7,
                                  out=None, config=None)
        assert await run_tournament_cmd(args) == exit_codes.OK
    finally:
        await sim.stop()
    out = json.loads(capsys.readouterr().out)
    assert out["checkpoints"] == ["epoch1", "epoch2", "epoch3"] and Path(out["sheet"]).is_file()
    assert main(["train", "promote", str(run_dir), "--checkpoint", "epoch3", "--comfy", str(comfy)]) == exit_codes.OK
    assert (comfy / "models" / "loras" / "out_20260820-1000-epoch3.safetensors").is_file()
