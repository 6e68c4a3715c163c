"""Ctrl-C: SIGINT to ``pistachio fix`` while it downloads a model, and a cancelled
Manager install. Nothing half-done is left where it would be used; the next run finishes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from pistachio_tui.cli import main
from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.fix.downloads import part_path
from pistachio_tui.fix.manager import InstallSpec, ManagerClient
from pistachio_tui.sim.server import SimServer
from tests.faults.helpers import assert_actionable, wait_until
from tests.fix.file_server import FileServer, fake_model
from tests.fix.workflows import CHECKPOINT_ONLY_NODES, MODELS, fix_workflow

REPO = Path(__file__).resolve().parents[2]
SIZE = 3_000_000


async def test_sigint_during_a_fix_download_keeps_the_part_and_the_next_run_resumes(tmp_path):
    name, folder = MODELS[0]
    data = fake_model(SIZE)
    files = FileServer(files={name: data}, gate=asyncio.Event())
    await files.start()
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    sim = SimServer(step_delay=0.001, models_dir=comfy / "models")
    await sim.start()
    workflow = tmp_path / "w.json"
    workflow.write_text(json.dumps(fix_workflow(files.url, CHECKPOINT_ONLY_NODES, [MODELS[0]])))
    argv = ["fix", str(workflow), "--server", sim.url, "--comfy-dir", str(comfy), "--yes", "--no-hf"]
    target = comfy / "models" / folder / name
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pistachio_tui", *argv, cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            await wait_until(lambda: part_path(target).exists() and part_path(target).stat().st_size == SIZE // 2,
                             "the download to be half done", limit=30)
            proc.send_signal(signal.SIGINT)
            async with asyncio.timeout(15):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 130, (out, err)
        assert_actionable(err.decode().strip().splitlines()[-1], "interrupted")
        assert b"Traceback" not in err + out
        assert not target.exists() and part_path(target).stat().st_size == SIZE // 2

        files.gate.set()
        code = await asyncio.to_thread(main, argv)
    finally:
        await sim.stop()
        await files.stop()
    assert code == 0
    assert files.requests[-1]["Range"] == f"bytes={SIZE // 2}-"
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert not part_path(target).exists()


@pytest.fixture
async def manager_sim():
    server = SimServer(step_delay=0.001, manager=True, reboot_downtime=0.05)
    await server.start()
    yield server
    await server.stop()


async def test_cancelled_manager_install_leaves_the_queue_consistent(manager_sim):
    sim = manager_sim
    sim.manager.task_delay = 0.3
    async with ComfyClient(sim.url) as client:
        manager = ManagerClient(client)
        first = await manager.queue_install(InstallSpec("comfyui_ultimatesdupscale"))
        waiting = asyncio.create_task(manager.run([first], poll_interval=0.02))
        await wait_until(lambda: sim.manager.running is not None, "the install to start")
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # Our listener and its websocket are gone; the server finishes the task on its own.
        await wait_until(lambda: not sim.hub.clients, "the cancelled wait to close its websocket")
        status = await wait_until(_idle(manager), "the Manager queue to drain")
        assert status.done_count == 1 and status.pending_count == 0
        assert "comfyui_ultimatesdupscale" in sim.manager.installed

        sim.manager.task_delay = 0.01
        second = await manager.queue_install(InstallSpec("comfyui-videohelpersuite"))
        results = await manager.run([second], poll_interval=0.02, timeout=10)
    assert results[second].ok is True
    assert set(sim.manager.installed) == {"comfyui_ultimatesdupscale", "comfyui-videohelpersuite"}


def _idle(manager: ManagerClient):
    async def check():
        status = await manager.queue_status()
        return status if status.idle else None
    return check
