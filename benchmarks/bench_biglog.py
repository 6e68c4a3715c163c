"""Open and index a ~1 GB synthetic DiffusionPipe log, against ``wc -l``.

The log is written once into the system temp folder and reused by later runs
(``--size`` picks another size, e.g. ``--size 200M``; ``--quick`` uses 64M).
Peak RSS is reported for the whole process: indexing must not load the file,
so it stays near the interpreter's own size whatever the log's size.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, bench_main, peak_rss_mib
from pistachio_tui.training.logindex import LogIndex
from pistachio_tui.training.synth import log_lines

_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30}
NEEDLE = "TRAINING COMPLETE!"


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in _UNITS:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    return int(text)


def synthetic_log(size: int) -> Path:
    """A log of at least ``size`` bytes made of whole synthetic runs (reused if present)."""
    path = Path(tempfile.gettempdir()) / f"pistachio-bench-biglog-{size}.log"
    if path.exists() and path.stat().st_size >= size:
        return path
    partial = path.with_suffix(".partial")
    written = 0
    with open(partial, "w", encoding="utf-8", buffering=2**20) as fh:
        while written < size:
            for line in log_lines(epochs=100, steps_per_epoch=500, nan_steps=frozenset({777})):
                written += fh.write(line + "\n")
    partial.replace(path)
    return path


def plain_reads(path: Path, count: int) -> float:
    """Seconds per read of 50 lines after a seek to a random byte offset: the floor for any line access."""
    rng = random.Random(1)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        start = time.perf_counter()
        for _ in range(count):
            fh.seek(rng.randrange(size - 2**16))
            for _ in range(51):  # the first line is usually cut by the seek
                fh.readline()
        return (time.perf_counter() - start) / count


def add_arguments(parser) -> None:
    parser.add_argument("--size", default="1G", help="log size, e.g. 1G, 200M (default 1G)")


def run(args) -> list[Figure]:
    size = parse_size("64M" if args.quick and args.size == "1G" else args.size)
    path = synthetic_log(size)
    mib = path.stat().st_size / 2**20

    start = time.perf_counter()
    wc = int(subprocess.run(["wc", "-l", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])
    wc_time = time.perf_counter() - start

    rss_before = peak_rss_mib()
    start = time.perf_counter()
    with LogIndex(path, follow=False) as index:
        index.wait()
        index_time = time.perf_counter() - start
        if index.line_count != wc:
            raise SystemExit(f"index counted {index.line_count} lines, wc -l {wc}")
        rng = random.Random(0)
        starts = [rng.randrange(index.line_count - 50) for _ in range(200)]
        start = time.perf_counter()
        for line in starts:
            index.lines(line, 50)
        page_time = (time.perf_counter() - start) / len(starts)
        start = time.perf_counter()
        found = index.find(NEEDLE, 0)
        search_time = time.perf_counter() - start
        index_kib = index.index_bytes / 1024
    seek_time = plain_reads(path, len(starts))
    start = time.perf_counter()
    subprocess.run(["grep", "-F", "-m1", "-n", NEEDLE, str(path)], capture_output=True, check=True)
    grep_time = time.perf_counter() - start
    return [
        Figure(f"open+index {mib:.0f} MiB log", index_time, "s", "wc -l", wc_time,
               note=f"{wc} lines, {mib / index_time:.0f} MiB/s"),
        Figure("read 50 lines at a random line", page_time * 1000, "ms", "seek + 50 readline", seek_time * 1000,
               note="after indexing; the yardstick knows the byte offset"),
        Figure("search to the end of the first run", search_time * 1000, "ms", "grep -F -m1", grep_time * 1000,
               note=f"found at line {found}; grep's time includes its start"),
        Figure("index size", index_kib, "KiB", "the log's size", mib * 1024, note="offsets of every 64th line"),
        Figure("peak RSS", peak_rss_mib(), "MiB", "before indexing", rss_before,
               note="whole process"),
    ]


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run, add_arguments))
