"""The keyboard tour of the TUI issue, driven in a real terminal (tmux) at 80×24, by hand.

    python -m tests.manual.tmux_tour [--width 80 --height 24] [--keep]

It starts a simulated ComfyUI in its own process and the app in a detached tmux
session with a scratch config and data folder and a hand-written settings file
full of comments, then types what a new user would: add a server with a typo in
its URL (the form refuses it), add a good one, open a workflow and queue it,
interrupt it on the Queue screen, filter the Queue table, start a batch and quit
while it runs (confirming). Every step's screen is printed. It fails (exit 1)
when a step's text does not appear, when the terminal shows a traceback
after the app quits, when the app exits non-zero, or when the settings file no longer
loads or lost its comments.

Pytest does not collect it: it needs tmux, which CI machines may lack. The same
tour runs under Textual's Pilot in ``tests/ui/test_tour.py`` on every CI run.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pistachio_tui.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "pistachio_tui" / "sim" / "data" / "workflows" / "sim_txt2img.json"
SESSION = "pistachio-tour"
SETTINGS = """\
# My ComfyUI machines. Keep this comment: the tour checks it survives.
theme = "textual-dark"   # the one I like

# Servers are added by the tour through the Servers screen.
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def keys(*sequence: str, literal: bool = False) -> None:
    tmux("send-keys", "-t", SESSION, *(["-l"] if literal else []), *sequence)
    time.sleep(0.3)


def type_text(text: str) -> None:
    keys(text, literal=True)


def expect(step: str, *texts: str, timeout: float = 15.0) -> str:
    """Wait until every text is on screen; print the screen either way."""
    deadline = time.monotonic() + timeout
    shown = screen()
    while not all(t in shown for t in texts) and time.monotonic() < deadline:
        time.sleep(0.25)
        shown = screen()
    print(f"--- {step}\n{shown.rstrip()}\n", flush=True)
    missing = [t for t in texts if t not in shown]
    if missing:
        raise SystemExit(f"tour failed at {step!r}: {missing} not on screen")
    return shown


def tour(scratch: Path, url: str, width: int, height: int) -> None:
    settings = scratch / "settings.toml"
    settings.write_text(SETTINGS)
    shutil.copy(WORKFLOW, scratch / "wf.json")
    (scratch / "batch.toml").write_text('workflow = "wf.json"\ncount = 40\noutput = "out"\n')
    command = (f"cd {shlex.quote(str(scratch))} && PISTACHIO_CONFIG_DIR=config PISTACHIO_DATA_DIR=data "
               f"{shlex.quote(sys.executable)} -m pistachio_tui --config settings.toml; "
               "echo EXIT-CODE=$?; sleep 60")
    tmux("new-session", "-d", "-s", SESSION, "-x", str(width), "-y", str(height), command)
    expect("start", "Servers")

    keys("1")
    keys("a")
    type_text("typo")
    keys("Enter")
    type_text("http://[::1")
    keys("Enter")
    keys("Enter")
    expect("a URL with a typo is refused", "not a valid URL")
    keys("Escape")

    keys("a")
    type_text("sim")
    keys("Enter")
    type_text(url)
    keys("Enter")
    keys("Enter")
    expect("a good server connects", "sim", "connected")

    keys("2")
    expect("Workflows", "Official templates")
    keys("o")
    type_text(str(scratch / "wf.json"))
    keys("Enter")
    expect("the workflow opens", "nodes to run")
    keys("g")
    keys("3")
    expect("the prompt runs", "Running ", "it/s")
    keys("i")
    expect("interrupted", "interrupted")
    keys("/")
    type_text("interrupted")
    keys("Enter")
    expect("the Queue table filters", "interrupted")
    keys("Escape")

    keys("8")
    expect("Batch", "Open file")
    keys("o")
    type_text(str(scratch / "batch.toml"))
    keys("Enter")
    expect("the batch loads", "40 jobs")
    keys("s")
    expect("the batch runs", "done")
    keys("q")
    expect("quitting asks first", "batch")
    keys("y")

    # Textual draws on stderr, so what the app printed on its way out is read back from the terminal.
    after = expect("after quitting", "EXIT-CODE=")
    after = tmux("capture-pane", "-p", "-S", "-500", "-t", SESSION)
    if "EXIT-CODE=0" not in after or "Traceback" in after or "never retrieved" in after:
        raise SystemExit(f"tour failed on the way out:\n{after}")
    text = settings.read_text()
    loaded = load_settings(settings)
    if "Keep this comment" not in text or "# the one I like" not in text:
        raise SystemExit(f"tour failed: the settings file lost its comments\n{text}")
    if [s.name for s in loaded.servers] != ["sim"]:
        raise SystemExit(f"tour failed: the settings file holds {[s.name for s in loaded.servers]}, not ['sim']")
    print(f"--- settings.toml after the tour (loads; comments kept)\n{text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=80)
    parser.add_argument("--height", type=int, default=24)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and tmux session")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 2
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "pistachio_tui.sim", "--port", str(port), "--step-delay", "0.4"],
                           stderr=subprocess.DEVNULL)
    scratch = Path(tempfile.mkdtemp(prefix="pistachio-tour-"))
    try:
        tour(scratch, f"http://127.0.0.1:{port}", args.width, args.height)
    finally:
        sim.terminate()
        sim.wait()
        if not args.keep:
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
            shutil.rmtree(scratch, ignore_errors=True)
    print("tour finished: no traceback, settings load and keep their comments")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
