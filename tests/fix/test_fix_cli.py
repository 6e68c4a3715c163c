"""``pistachio fix`` end to end: simulator with Manager, models from a local file server."""

from __future__ import annotations

import asyncio
import json

from pistachio_tui.cli import main
from pistachio_tui.sim.server import SimServer
from tests.fix.file_server import FileServer, fake_model
from tests.fix.workflows import CHECKPOINT_ONLY_NODES, MODELS, fix_workflow

BIG = 400_000
DROP_AT = 40_000


async def test_fix_red_to_accepted_with_interrupted_download_resumed(tmp_path, capsys):
    data = {name: fake_model(BIG if folder == "checkpoints" else 50_000) for name, folder in MODELS}
    # The checkpoint's first request and all three retries break off: the first run cannot finish it.
    files = FileServer(files=data, drop_after={n: DROP_AT for n in (1, 2, 3, 4)})
    await files.start()
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    sim = SimServer(step_delay=0.001, manager=True, models_dir=comfy / "models", reboot_downtime=0.05)
    await sim.start()
    workflow = tmp_path / "downloaded.json"
    workflow.write_text(json.dumps(fix_workflow(files.url)))
    argv = ["fix", str(workflow), "--server", sim.url, "--comfy-dir", str(comfy), "--yes", "--no-hf"]
    try:
        first = await asyncio.to_thread(main, argv)
        first_out = capsys.readouterr().out
        ckpt = comfy / "models" / "checkpoints" / "fixflow_ckpt.safetensors"
        partial = ckpt.with_name(ckpt.name + ".part")
        assert first == 2
        assert "kept dropping" in first_out and "✓ [install] UltimateSDUpscale: installed" in first_out
        assert not ckpt.exists() and partial.stat().st_size == 4 * DROP_AT

        second = await asyncio.to_thread(main, argv)
        second_out = capsys.readouterr().out
    finally:
        await sim.stop()
        await files.stop()
    assert second == 0, second_out
    assert "using the source chosen earlier" in second_out
    assert "The server accepted the workflow" in second_out
    assert files.requests[-1]["Range"] == f"bytes={4 * DROP_AT}-"
    for name, folder in MODELS:
        assert (comfy / "models" / folder / name).read_bytes() == data[name]
    print(first_out + second_out)


async def test_fix_json_lines(tmp_path, capsys):
    sim = SimServer(step_delay=0.001, manager=True, reboot_downtime=0.05)
    await sim.start()
    workflow = tmp_path / "w.json"
    workflow.write_text(json.dumps({
        "1": {"class_type": "NoPackProvidesThis_9000", "inputs": {}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }))
    try:
        code = await asyncio.to_thread(main, ["fix", str(workflow), "--server", sim.url, "--json", "--no-hf"])
    finally:
        await sim.stop()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 2
    assert lines[0]["event"]["step"] == "diagnose"
    result = lines[-1]["result"]
    assert not result["accepted"] and "NoPackProvidesThis_9000" in result["remaining"][0]


def test_fix_unreachable_server(tmp_path, capsys):
    workflow = tmp_path / "w.json"
    workflow.write_text(json.dumps({"1": {"class_type": "SaveImage", "inputs": {}}}))
    code = main(["fix", str(workflow), "--server", "http://127.0.0.1:9", "--no-hf"])
    assert code == 3
    assert "Cannot reach ComfyUI" in capsys.readouterr().err


async def test_fix_saves_the_corrected_workflow_where_asked(tmp_path, capsys):
    sim = SimServer(step_delay=0.001, models={"checkpoints": ["fixflow_ckpt.safetensors"]})
    await sim.start()
    nodes = [(1, "CheckpointLoaderSimple", ["SDXL\\fixflow_ckpt.safetensors"], {}, ["MODEL", "CLIP", "VAE"]),
             *CHECKPOINT_ONLY_NODES[1:]]
    workflow = tmp_path / "w.json"
    workflow.write_text(json.dumps(fix_workflow("http://127.0.0.1:9", nodes, [])))
    out = tmp_path / "fixed" / "w.json"
    try:
        code = await asyncio.to_thread(main, ["fix", str(workflow), "--server", sim.url, "--no-hf", "-o", str(out)])
    finally:
        await sim.stop()
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "using checkpoints/fixflow_ckpt.safetensors already on the server" in printed
    assert f"saved as {out}" in printed
    assert json.loads(out.read_text())["nodes"][0]["widgets_values"] == ["fixflow_ckpt.safetensors"]
