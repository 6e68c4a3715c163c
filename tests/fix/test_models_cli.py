"""``pistachio models list|download`` against the simulator and a local file server."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from pistachio_tui.cli import main
from pistachio_tui.fix.models_search import model_source
from pistachio_tui.sim.server import SimServer
from tests.fix.file_server import FileServer, fake_model

DATA = fake_model(120_000)


@pytest.fixture
async def files():
    server = FileServer(files={"my_lora.safetensors": DATA})
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize(("text", "url", "name"), [
    ("hf://owner/repo/loras/x.safetensors", "https://huggingface.co/owner/repo/resolve/main/loras/x.safetensors",
     "x.safetensors"),
    ("hf://owner/repo@v2/x.safetensors", "https://huggingface.co/owner/repo/resolve/v2/x.safetensors",
     "x.safetensors"),
    ("https://huggingface.co/o/r/blob/main/a%20b.safetensors",
     "https://huggingface.co/o/r/resolve/main/a%20b.safetensors", "a b.safetensors"),
    ("https://example.com/files/m.pth?download=1", "https://example.com/files/m.pth?download=1", "m.pth"),
])
def test_model_sources(text, url, name, monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert model_source(text) == (url, name)


@pytest.mark.parametrize("text", ["hf://owner/repo", "ftp://x/y", "not a url", "https://example.com/"])
def test_bad_sources_are_usage_errors(text, capsys):
    assert main(["models", "download", text, "--folder", "loras", "--comfy-dir", "."]) == 64
    assert capsys.readouterr().err


async def test_download_into_a_folder_the_server_reads_then_list(tmp_path, files, capsys):
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    sim = SimServer(step_delay=0.001, models_dir=comfy / "models")
    await sim.start()
    digest = hashlib.sha256(DATA).hexdigest()
    try:
        code = await asyncio.to_thread(main, [
            "models", "download", f"{files.url}/my_lora.safetensors", "--folder", "loras",
            "--name", "styles/mine.safetensors", "--sha256", digest, "--comfy-dir", str(comfy), "--server", sim.url])
        listed = await asyncio.to_thread(main, ["models", "list", "--server", sim.url, "--folder", "loras", "--json"])
    finally:
        await sim.stop()
    out = capsys.readouterr().out
    assert code == 0, out
    assert (comfy / "models" / "loras" / "styles" / "mine.safetensors").read_bytes() == DATA
    listing = json.loads(out[out.index("{"):])
    assert listed == 0 and "styles/mine.safetensors" in listing["folders"]["loras"]["files"]
    assert listing["folders"]["loras"]["paths"] == [str(comfy / "models" / "loras")]


async def test_download_refused_when_the_server_reads_elsewhere(tmp_path, files, capsys):
    sim = SimServer(step_delay=0.001, models_dir=tmp_path / "server" / "models")
    await sim.start()
    other = tmp_path / "other"
    (other / "models").mkdir(parents=True)
    try:
        code = await asyncio.to_thread(main, [
            "models", "download", f"{files.url}/my_lora.safetensors", "--folder", "loras",
            "--comfy-dir", str(other), "--server", sim.url])
    finally:
        await sim.stop()
    assert code == 1 and "invisible" in capsys.readouterr().err
    assert not files.requests


async def test_download_through_the_manager(tmp_path, files, capsys):
    sim = SimServer(step_delay=0.001, manager="V4.2.1", models_dir=tmp_path / "models")
    await sim.start()
    try:
        code = await asyncio.to_thread(main, [
            "models", "download", f"{files.url}/my_lora.safetensors", "--folder", "loras", "--server", sim.url])
    finally:
        await sim.stop()
    assert code == 0, capsys.readouterr()
    assert (tmp_path / "models" / "loras" / "my_lora.safetensors").read_bytes() == DATA
