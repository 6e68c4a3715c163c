"""Start-up imports only what the first screen needs.

``pistachio --help`` and the first paint of the app (Servers screen, or the
dashboard) each run in a fresh interpreter, which reports the modules it had
imported at that moment (for the app: when its first frame goes to the
terminal, started as ``pistachio`` starts it). TensorBoard, numpy, Pillow,
plotext, huggingface_hub, aiohttp and the simulator load when a screen that
needs them is first shown, and so do the other screens' modules; textual-image
when the first picture is drawn; httpx, websockets and the REST and event
stream modules when the servers are connected, after the first paint; tomlkit
when settings are saved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Top-level packages no first paint needs (each costs tens of ms or MB).
HEAVY = ("numpy", "PIL", "plotext", "textual_plotext", "tensorboard", "huggingface_hub", "aiohttp",
         "textual_image.widget", "textual_image.renderable", "click", "pygments", "google", "absl", "fsspec",
         "httpx", "httpcore", "anyio", "websockets", "tomlkit", "sqlite3")
#: Our modules that connect servers, follow their prompts or keep the journal: loaded after the first paint.
CONNECT = ("pistachio_tui.comfy.client", "pistachio_tui.comfy.stream", "pistachio_tui.comfy.events",
           "pistachio_tui.comfy.tracker", "pistachio_tui.comfy.types", "pistachio_tui.journal",
           "pistachio_tui.journal_recorder")
#: The journal's thread imports these after the first paint (``--help`` reads the seed modes from one).
WORKFLOW = ("pistachio_tui.workflow",)
#: Our own modules that belong to other screens or to tests and the demo.
LATER = ("pistachio_tui.sim", "pistachio_tui.training", "pistachio_tui.fleet", "pistachio_tui.fix",
         "pistachio_tui.runpod", "pistachio_tui.gpu",
         *(f"pistachio_tui.ui.{domain}" for domain in ("workflows", "queue", "gpu", "fix", "training", "pods",
                                                       "batch")))

HELP = """
import json, sys
from pistachio_tui.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print(json.dumps(sorted(name for name, module in sys.modules.items() if module is not None)))
"""

FIRST_PAINT = """
import json, sys
from pistachio_tui.config import ServerConfig, Settings
from pistachio_tui.ui.app import PistachioApp
from pistachio_tui.ui.widgets.terminal_graphics import probe

probe()  # as run_app does before the app takes the terminal
# Nobody listens on port 9: the first paint must not wait for the network either.
app = PistachioApp(Settings(servers=[ServerConfig("local", "http://127.0.0.1:9")]), dashboard=sys.argv[1] == "dashboard")
seen = []
display = app._display
def first_frame(screen, update):
    if update is not None and not seen:
        seen.extend(sorted(name for name, module in sys.modules.items() if module is not None))
    display(screen, update)
app._display = first_frame
async def pilot(pilot):
    while not seen:
        await pilot.pause()
    app.exit()
app.run(headless=True, size=(120, 40), auto_pilot=pilot)
print(json.dumps(seen))
"""


def imported(code: str, *args: str, tmp_path: Path) -> list[str]:
    env = {**os.environ, "PISTACHIO_CONFIG_DIR": str(tmp_path), "PISTACHIO_DATA_DIR": str(tmp_path)}
    for secret in ("RUNPOD_API_KEY", "HF_TOKEN"):
        env.pop(secret, None)
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    modules: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    assert "pistachio_tui" in modules
    return modules


def offenders(modules: list[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == b or m.startswith(b + ".") for b in banned))


def test_help_imports_no_heavy_module_nor_textual(tmp_path: Path) -> None:
    modules = imported(HELP, tmp_path=tmp_path)
    assert offenders(modules, HEAVY + LATER + CONNECT + ("textual", "textual_image")) == []


#: What a first screen shows besides servers: the dashboard has pods, a GPU graph and each server's queue
#: (the Queue screen's progress line loads when a prompt runs).
SHOWN = {"servers": (), "dashboard": ("pistachio_tui.runpod", "pistachio_tui.ui.gpu", "pistachio_tui.comfy.types")}


@pytest.mark.parametrize("first", ["servers", "dashboard"])
def test_first_paint_imports_only_the_first_screen(first: str, tmp_path: Path) -> None:
    modules = imported(FIRST_PAINT, first, tmp_path=tmp_path)
    assert f"pistachio_tui.ui.{first}.screen" in modules
    banned = tuple(name for name in LATER + CONNECT if name not in SHOWN[first])
    assert offenders(modules, HEAVY + WORKFLOW + banned) == []
