"""Load + convert + analyse of the whole official template corpus, against plain ``json.loads``.

Both sides start from the same bytes already in memory, so the ratio is what
the workflow engine costs on top of parsing the JSON at all. Both are timed in
CPU seconds of this process, in alternating runs: the work is single-threaded
and CPU-bound, so on a shared machine other processes' load (which stretches
wall time unevenly between two phases measured one after the other) does not
skew the ratio.
"""

from __future__ import annotations

import importlib.util
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import Figure, bench_main
from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.deps import analyse
from pistachio_tui.workflow.load import load_workflow

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "comfyui-0.8.0" / "object_info.json"


def corpus_blobs(limit: int | None) -> list[bytes]:
    spec = importlib.util.find_spec("comfyui_workflow_templates_json")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the comfyui-workflow-templates-json package is not installed")
    folder = Path(list(spec.submodule_search_locations)[0]) / "templates"
    files = sorted(p for p in folder.glob("*.json") if not p.name.startswith(("index", "fuse_options")))
    return [p.read_bytes() for p in files[:limit]]


def interleaved_cpu_medians(first: Callable[[], object], second: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median CPU seconds of each function over ``runs`` alternating calls, after one warm-up of each."""
    first()
    second()
    first_times: list[float] = []
    second_times: list[float] = []
    for _ in range(runs):
        for fn, out in ((first, first_times), (second, second_times)):
            start = time.process_time()
            fn()
            out.append(time.process_time() - start)
    return statistics.median(first_times), statistics.median(second_times)


def run(args) -> list[Figure]:
    blobs = corpus_blobs(100 if args.quick else None)
    object_info = json.loads(FIXTURE.read_text())["body"]
    runs = 3 if args.quick else 7

    def parse_only() -> None:
        for blob in blobs:
            json.loads(blob)

    def engine() -> None:
        rng = random.Random(0)  # one seeded generator per pass: seeding one per workflow is not engine work
        for blob in blobs:
            workflow = load_workflow(blob)
            analyse(workflow, object_info, conversion=to_api(workflow, object_info, rng=rng))

    baseline, total = interleaved_cpu_medians(parse_only, engine, runs)
    size_mib = sum(len(b) for b in blobs) / 2**20
    return [
        Figure(f"load+convert+analyse {len(blobs)} workflows", total * 1000, "ms", "json.loads", baseline * 1000,
               note=f"{size_mib:.1f} MiB of JSON; CPU time, target ≤ 3×"),
        Figure("per workflow", total / len(blobs) * 1000, "ms", "json.loads", baseline / len(blobs) * 1000),
    ]


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run))
