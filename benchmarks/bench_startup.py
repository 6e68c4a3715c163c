"""Cold start to first paint, and peak memory, of Pistachio against a minimal Textual app.

Each start is a fresh interpreter (imports included, as a user would see it),
run headless; "first paint" is when Textual hands the ready app to a pilot,
i.e. after the first screen has been composed, mounted and laid out.
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.common import Figure, bench_main

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
which = sys.argv[1]
if which == "minimal":
    # Stdlib-only imports besides Textual's, so the yardstick pays for nothing of ours.
    from benchmarks.headless import minimal_app
    app = minimal_app()
else:
    from pistachio_tui.config import Settings, ServerConfig
    from pistachio_tui.ui.app import PistachioApp
    # A server nobody listens on: start-up must not wait for the network.
    app = PistachioApp(Settings(servers=[ServerConfig("local", "http://127.0.0.1:9")]))

painted = {}
async def pilot(p):
    painted["t"] = time.perf_counter() - t0
    app.exit()

app.run(headless=True, size=(120, 40), auto_pilot=pilot)
print(json.dumps({"first_paint": painted["t"],
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(which: str, runs: int) -> tuple[float, float]:
    paints, rss = [], []
    for _ in range(runs + 1):  # the first run warms the OS file cache; not counted
        out = subprocess.run([sys.executable, "-c", CHILD, which], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        paints.append(result["first_paint"])
        rss.append(result["rss_mib"])
    paints, rss = sorted(paints[1:]), sorted(rss[1:])
    return paints[len(paints) // 2], rss[len(rss) // 2]


def run(args) -> list[Figure]:
    runs = 3 if args.quick else 7
    app_paint, app_rss = measure("pistachio", runs)
    min_paint, min_rss = measure("minimal", runs)
    return [
        Figure("cold start to first paint", app_paint, "s", "minimal Textual app", min_paint),
        Figure("peak memory at first paint", app_rss, "MiB", "minimal Textual app", min_rss),
    ]


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run))
