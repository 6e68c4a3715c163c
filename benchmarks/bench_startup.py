"""Cold start to first paint, and peak memory, of Pistachio against a minimal Textual app.

Each start is a fresh interpreter (imports included, as a user would see it),
run headless; "first paint" is the first frame Textual hands to the terminal
(``App._display``), i.e. the first screen composed, mounted, laid out and drawn,
for the yardstick as for the app. The app gets an empty config and data folder
of its own (``measure(..., env=...)`` points them elsewhere), and its servers are
ports nobody listens on. As for an installed app, Python's bytecode cache is in
place: the uncounted first start writes it, even where ``PYTHONDONTWRITEBYTECODE``
is set (the dependencies' cache was written when they were installed).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import NamedTuple

from benchmarks.common import Figure, bench_main

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
which, servers = sys.argv[1], int(sys.argv[2])
if which == "minimal":
    # Stdlib-only imports besides Textual's, so the yardstick pays for nothing of ours.
    from benchmarks.headless import minimal_app
    app = minimal_app()
else:
    from pistachio_tui.config import Settings, ServerConfig
    from pistachio_tui.ui.app import PistachioApp
    from pistachio_tui.ui.widgets.terminal_graphics import probe
    probe()  # as `pistachio` asks the terminal before the app starts (here no terminal: nothing to ask)
    # Servers nobody listens on: start-up must not wait for the network.
    app = PistachioApp(Settings(servers=[ServerConfig(f"s{n}", f"http://127.0.0.{n + 1}:9") for n in range(servers)]))

painted = {}
display = app._display
def first_frame(screen, update):
    if update is not None and "t" not in painted:
        painted["t"] = time.perf_counter() - t0
        painted["cpu"] = time.process_time()  # the interpreter's own start included, as in the wall time
    display(screen, update)
app._display = first_frame

async def pilot(p):
    while "t" not in painted:
        await p.pause()
    app.exit()

app.run(headless=True, size=(120, 40), auto_pilot=pilot)
try:  # the peak of this interpreter alone: on Linux ru_maxrss carries the parent's peak over exec
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"first_paint": painted["t"], "cpu": painted["cpu"], "rss_mib": peak}))
"""


class Start(NamedTuple):
    """Medians over fresh starts: wall and CPU seconds to the first paint, peak RSS (MiB)."""

    first_paint: float
    cpu: float
    rss_mib: float


def measure(which: str, runs: int, *, servers: int = 1, env: dict[str, str] | None = None) -> Start:
    """Medians over ``runs`` fresh starts, after one uncounted start.

    The CPU seconds (the interpreter's own start included, as in the wall time) show what the
    start costs on a busy machine, where the wall time also holds the waits for a free core.
    """
    starts = []
    with tempfile.TemporaryDirectory() as home:
        child_env = {**os.environ, "PISTACHIO_CONFIG_DIR": home, "PISTACHIO_DATA_DIR": home, **(env or {})}
        for unwanted in ("RUNPOD_API_KEY", "HF_TOKEN", "PYTHONDONTWRITEBYTECODE"):
            child_env.pop(unwanted, None)
        for _ in range(runs + 1):  # the first run warms the OS file cache and bytecode cache; not counted
            # A start that never paints or never exits fails the benchmark instead of stalling the run.
            out = subprocess.run([sys.executable, "-c", CHILD, which, str(servers)], capture_output=True, text=True,
                                 check=True, env=child_env, timeout=120)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            starts.append(Start(result["first_paint"], result["cpu"], result["rss_mib"]))
    return Start(*(statistics.median(values) for values in zip(*starts[1:])))


def run(args) -> list[Figure]:
    runs = 3 if args.quick else 7
    # Alternated start by start, so a change of load on a shared machine touches both sides alike.
    apps, mins = [], []
    for _ in range(runs):
        apps.append(measure("pistachio", 1))
        mins.append(measure("minimal", 1))
    app, yard = (Start(*(statistics.median(values) for values in zip(*starts))) for starts in (apps, mins))
    return [
        Figure("cold start to first paint", app.first_paint, "s", "minimal Textual app", yard.first_paint,
               note="goal ≤ 1.5×"),
        Figure("CPU time to first paint", app.cpu, "s", "minimal Textual app", yard.cpu,
               note="the start's cost, whatever the load"),
        Figure("peak memory at first paint", app.rss_mib, "MiB", "minimal Textual app", yard.rss_mib,
               note="goal ≤ 1.5×"),
    ]


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run))
