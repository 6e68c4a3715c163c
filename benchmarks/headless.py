"""Running the real app headless for a measurement: simulators, a fresh interpreter, a redraw counter.

Each app measurement runs in its own interpreter (``python -m benchmarks.headless
module:function '{json kwargs}'``) so that one app's timers, threads and memory
cannot colour the next figure; the function returns a dict, printed as the
last line of JSON. Simulated servers run in their own processes too, so their
CPU time is not counted as the app's.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_sim(step_delay: float = 0.05) -> tuple[subprocess.Popen, str]:
    """A simulated ComfyUI in its own process on a free loopback port: (process, url)."""
    proc = subprocess.Popen([sys.executable, "-m", "pistachio_tui.sim", "--port", "0",
                             "--step-delay", str(step_delay)], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"the simulator did not start: {line!r}")
    return proc, match[0]


@contextlib.contextmanager
def sims(count: int, step_delay: float = 0.05) -> Iterator[list[str]]:
    """``count`` simulators for the duration of the block; yields their URLs."""
    procs = []
    try:
        for _ in range(count):
            procs.append(start_sim(step_delay))
        yield [url for _, url in procs]
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait()


def in_child(target: str, **kwargs: object) -> dict:
    """Call ``benchmarks.<module>:<function>(**kwargs)`` in a fresh interpreter; its returned dict.

    The child gets an empty config folder of its own, so no user settings,
    themes or secrets (a RunPod key would start pod polling) change what is measured.
    """
    with tempfile.TemporaryDirectory() as config:
        env = {**os.environ, "PISTACHIO_CONFIG_DIR": config}
        for secret in ("RUNPOD_API_KEY", "HF_TOKEN"):
            env.pop(secret, None)
        proc = subprocess.run([sys.executable, "-m", "benchmarks.headless", target, json.dumps(kwargs)],
                              cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{target} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def minimal_app():
    """The yardstick app: a header, a one-row table and a footer, as in the startup benchmark."""
    from textual.app import App
    from textual.widgets import DataTable, Footer, Header

    class Minimal(App):
        def compose(self):
            yield Header()
            yield DataTable()
            yield Footer()

        def on_mount(self):
            table = self.query_one(DataTable)
            table.add_columns("server", "status", "queue")
            table.add_row("local", "connected", "0")

    return Minimal()


def pistachio_app(urls: list[str], *, dashboard: bool = False, gpu_interval: float = 1.0):
    """The real app over ``urls`` as ``pistachio`` starts it, the GPU view sampling every ``gpu_interval`` s."""
    from pistachio_tui.config import ServerConfig, Settings
    from pistachio_tui.ui.app import PistachioApp

    servers = [ServerConfig(f"sim{n}", url) for n, url in enumerate(urls, 1)]
    return PistachioApp(Settings(servers=servers, gpu_interval=gpu_interval), dashboard=dashboard)


class RedrawCounter:
    """Counts real screen updates: each time a screen hands a compositor update to the terminal.

    In Textual 8 every repaint ends in ``App._display(screen, update)``: the
    screen's update timer (at most ``TEXTUAL_FPS`` times a second) or a layout
    refresh calls it once per frame with what changed. Messages and widget
    ``refresh()`` calls that fall into the same frame are not counted twice.
    """

    def __init__(self, app) -> None:
        self.count = 0
        display = app._display

        def counting(screen, renderable) -> None:
            if renderable is not None:
                self.count += 1
            display(screen, renderable)

        app._display = counting


async def run_headless(app, measure, size: tuple[int, int] = (120, 40)) -> dict:
    """Run ``app`` headless, await ``measure(app)`` once it has painted, exit; what it returned."""
    result: dict = {}

    async def pilot(_pilot) -> None:
        try:
            result.update(await measure(app))
        finally:
            app.exit()

    await app.run_async(headless=True, size=size, auto_pilot=pilot)
    if not result:
        raise RuntimeError("the measurement did not finish (the app exited first)")
    return result


async def wait_for(condition, timeout: float, what: str) -> None:
    """Poll ``condition()`` every 50 ms until true; a stuck benchmark fails instead of hanging."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}") from None


def main(argv: list[str]) -> int:
    target, kwargs = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    module, function = target.split(":")
    fn = getattr(importlib.import_module(f"benchmarks.{module}"), function)
    print(json.dumps(asyncio.run(fn(**kwargs))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
