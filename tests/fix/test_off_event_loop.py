"""Slow file work of the fix flow and of downloads runs in worker threads, never on the event loop
the UI shares: each test records which thread did the work."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.fix import downloads, models_search, nodedb, ranges
from pistachio_tui.fix.flow import FixFlow
from pistachio_tui.workflow.deps import ModelNeed
from pistachio_tui.workflow.load import load_workflow
from tests.fix.file_server import FileServer, fake_model

#: Large enough to arrive in many chunks, so writes overlap with receiving.
DATA = fake_model(5 * 1024 * 1024)


def _recording(threads: list[threading.Thread], func):
    def wrapper(*args, **kwargs):
        threads.append(threading.current_thread())
        return func(*args, **kwargs)

    return wrapper


@pytest.fixture
def fresh_offline_lists():
    """Forget the cached offline lists so the test sees them being read."""
    caches = (nodedb._offline_db, nodedb._offline_details, models_search._model_list)
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


class _FakeManager:
    async def mappings(self, mode: str) -> dict:
        return {"https://github.com/someone/pack": [["SomeNode"], {"title_aux": "Some pack"}]}


async def test_node_maps_are_built_in_a_thread(monkeypatch, fresh_offline_lists):
    loop_thread = threading.current_thread()
    reads: list[threading.Thread] = []
    builds: list[threading.Thread] = []
    monkeypatch.setattr(nodedb, "_read_json", _recording(reads, nodedb._read_json))
    monkeypatch.setattr(nodedb.NodeDB, "from_mappings", staticmethod(_recording(builds, nodedb.NodeDB.from_mappings)))
    workflow = load_workflow(json.dumps({"1": {"class_type": "SaveImage", "inputs": {}}}).encode(), "w.json")
    async with ComfyClient("http://127.0.0.1:9") as client:
        live, offline = await FixFlow(client, workflow)._node_db(_FakeManager())
    assert live is not None and live.packs_for("SomeNode")
    assert offline is not None and len(offline) > 1000
    assert reads and builds
    assert loop_thread not in reads + builds


async def test_manager_model_list_is_read_in_a_thread(monkeypatch, fresh_offline_lists):
    loop_thread = threading.current_thread()
    reads: list[threading.Thread] = []
    monkeypatch.setattr(models_search, "_model_list", _recording(reads, models_search._model_list))
    need = ModelNeed("4x-UltraSharp.pth", "upscale_models", "1", "model_name", None, False, False)
    candidates = await models_search.find_candidates(need, hf=False)
    assert candidates and candidates[0].source == "manager"
    assert reads and loop_thread not in reads


async def test_download_writes_and_hashes_in_a_thread(monkeypatch, tmp_path):
    loop_thread = threading.current_thread()
    writes: list[threading.Thread] = []
    hashed: list[threading.Thread] = []
    real_open, real_sha256 = ranges.open_part, hashlib.sha256

    class _Digest:
        def __init__(self, *args):
            self._digest = real_sha256(*args)

        def update(self, data):
            if data:
                hashed.append(threading.current_thread())
            self._digest.update(data)

        def hexdigest(self):
            return self._digest.hexdigest()

    class _File:
        def __init__(self, fh):
            self._fh = fh

        def write(self, data):
            writes.append(threading.current_thread())
            return self._fh.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()

    monkeypatch.setattr(ranges, "open_part", lambda part, *, resume: _File(real_open(part, resume=resume)))
    monkeypatch.setattr(ranges.hashlib, "sha256", _Digest)
    server = FileServer(files={"model.safetensors": DATA})
    await server.start()
    try:
        target = tmp_path / "model.safetensors"
        await downloads.download(f"{server.url}/model.safetensors", target,
                                 sha256=real_sha256(DATA).hexdigest())
    finally:
        await server.stop()
    assert target.read_bytes() == DATA
    # Several writes, none of them on the loop's thread.
    assert len(writes) >= 2 and hashed
    assert loop_thread not in writes + hashed
