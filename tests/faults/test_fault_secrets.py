"""Credentials in model URLs (``user:pw@``, ``?token=``) are never shown nor stored, and the state
file that remembers choices is private."""

from __future__ import annotations

import asyncio
import json
import stat

from pistachio_tui.cli import main
from pistachio_tui.config import state_dir
from pistachio_tui.redact import safe_url, scrub_urls
from pistachio_tui.sim.server import SimServer
from tests.fix.file_server import FileServer, fake_model
from tests.fix.workflows import CHECKPOINT_ONLY_NODES, fix_workflow

NAME = "fixflow_ckpt.safetensors"


def test_safe_url_hides_passwords_and_signed_parameters():
    assert safe_url("https://me:PW@h.test/m.safetensors?download=true&token=T&X-Amz-Signature=S") == \
        "https://…@h.test/m.safetensors?download=true&token=…&X-Amz-Signature=…"
    assert scrub_urls("see http://a:b@h/x?sig=1 and http://[::1") == "see http://…@h/x?sig=… and http://…"


async def test_fix_run_shows_and_stores_no_url_credentials(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PISTACHIO_CONFIG_DIR", str(tmp_path / "config"))
    files = FileServer(files={NAME: fake_model(20_000)})
    await files.start()
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    sim = SimServer(step_delay=0.001, models_dir=comfy / "models")
    await sim.start()
    secret_url = files.url.replace("://", "://me:PWSECRET@") + f"/{NAME}?token=TOKSECRET"
    ui = fix_workflow(files.url, CHECKPOINT_ONLY_NODES, [(NAME, "checkpoints")])
    for entry in ui["models"]:
        entry["url"] = secret_url
    workflow = tmp_path / "w.json"
    workflow.write_text(json.dumps(ui))
    try:
        outputs = []
        for extra in (["--json"], []):
            (comfy / "models" / "checkpoints" / NAME).unlink(missing_ok=True)
            await asyncio.to_thread(main, ["fix", str(workflow), "--server", sim.url, "--comfy-dir", str(comfy),
                                           "--yes", "--no-hf", *extra])
            out = capsys.readouterr()
            outputs += [out.out, out.err]
    finally:
        await sim.stop()
        await files.stop()
    assert (comfy / "models" / "checkpoints" / NAME).exists(), outputs
    assert files.requests, "the download used the real URL"
    assert not [text for text in outputs if "SECRET" in text], outputs
    assert any("…@" in text for text in outputs)
    saved = list((state_dir() / "fix").glob("*.json"))
    assert saved, "the fix flow remembers its choices"
    for path in saved:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert "SECRET" not in path.read_text()
