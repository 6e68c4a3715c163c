"""Open and index a ~1 GB synthetic DiffusionPipe log, against ``wc -l`` and ``toolong``.

The log is written once into the system temp folder and reused by later runs
(``--size`` picks another size, e.g. ``--size 200M``; ``--quick`` uses 64M).
Indexing runs in a fresh interpreter, as does toolong's own line scan
(``pip install --no-deps toolong``: its pinned Textual would replace ours; the
scan needs only Rich), so each peak RSS is that indexer's alone: ours must not
load the file, and stays near the interpreter's size whatever the log's size.
"""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, bench_main
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
    """A log of at least ``size`` bytes made of whole synthetic runs (reused if present).

    Logs above 1 GiB repeat the 1 GiB one (still whole runs), which is much faster to write.
    """
    path = Path(tempfile.gettempdir()) / f"pistachio-bench-biglog-{size}.log"
    if path.exists() and path.stat().st_size >= size:
        return path
    partial = path.with_suffix(".partial")
    if size > 2**30:
        unit = synthetic_log(2**30)
        with open(partial, "wb") as out:
            for _ in range(-(-size // unit.stat().st_size)):
                with open(unit, "rb") as src:
                    shutil.copyfileobj(src, out, 2**24)
        partial.replace(path)
        return path
    written = 0
    with open(partial, "w", encoding="utf-8", buffering=2**20) as fh:
        while written < size:
            for line in log_lines(epochs=100, steps_per_epoch=500, nan_steps=frozenset({777})):
                written += fh.write(line + "\n")
    partial.replace(path)
    return path


#: Indexes the log in a fresh interpreter and prints what it cost, so the peak RSS is the index's alone.
INDEX_CHILD = r"""
import json, resource, sys, time
def rss():
    # The peak of this interpreter alone: on Linux ru_maxrss carries the parent's peak over exec.
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
which, path = sys.argv[1], sys.argv[2]
if which == "toolong":
    import threading
    from toolong.log_file import LogFile
    before = rss()
    start = time.perf_counter()
    log = LogFile(path)
    log.open(threading.Event())
    lines = sum(len(breaks) for _, breaks in log.scan_line_breaks())
    log.close()
else:
    from pistachio_tui.training.logindex import LogIndex
    before = rss()
    start = time.perf_counter()
    with LogIndex(path, follow=False) as index:
        index.wait()
        lines = index.line_count
print(json.dumps({"seconds": time.perf_counter() - start, "lines": lines, "rss_before": before, "rss_peak": rss()}))
"""


def index_in_child(path: Path, which: str = "pistachio") -> dict:
    """Open and index ``path`` with our ``LogIndex`` (or ``toolong``'s scan) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", INDEX_CHILD, which, str(path)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def wc_lines(path: Path) -> tuple[int, float]:
    """``wc -l``: its count and seconds."""
    start = time.perf_counter()
    out = subprocess.run(["wc", "-l", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]), time.perf_counter() - start


def has_toolong() -> bool:
    return importlib.util.find_spec("toolong") is not None


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

    wc_lines(path)  # the file into the OS cache, so that no one pays for the disk
    runs = 3
    # Interleaved and the median of each, so a change of load on a shared machine touches all alike.
    wc_times, ours, theirs = [], [], []
    for _ in range(runs):
        wc, seconds = wc_lines(path)
        wc_times.append(seconds)
        ours.append(index_in_child(path))
        if has_toolong():
            theirs.append(index_in_child(path, "toolong"))
    wc_time = sorted(wc_times)[runs // 2]
    mine = sorted(ours, key=lambda r: r["seconds"])[runs // 2]
    if mine["lines"] != wc:
        raise SystemExit(f"index counted {mine['lines']} lines, wc -l {wc}")
    index_time = mine["seconds"]

    with LogIndex(path, follow=False) as index:
        index.wait()
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
    figures = [
        Figure(f"open+index {mib:.0f} MiB log", index_time, "s", "wc -l", wc_time,
               note=f"{wc} lines, {mib / index_time:.0f} MiB/s; goal ≤ 2×"),
    ]
    if theirs:
        tl = sorted(theirs, key=lambda r: r["seconds"])[runs // 2]
        figures += [
            Figure(f"open+index {mib:.0f} MiB log", index_time, "s", "toolong's line scan", tl["seconds"],
                   note="same file, same run"),
            Figure("peak RSS while indexing", mine["rss_peak"], "MiB", "toolong's", tl["rss_peak"],
                   note=f"fresh interpreters; ours {mine['rss_peak'] - mine['rss_before']:.0f} MiB above start, "
                        f"toolong's {tl['rss_peak'] - tl['rss_before']:.0f}"),
        ]
    else:
        figures.append(Figure("toolong yardstick", 0, "", note="not installed: pip install --no-deps toolong"))
    return figures + [
        Figure("read 50 lines at a random line", page_time * 1000, "ms", "seek + 50 readline", seek_time * 1000,
               note="after indexing; the yardstick knows the byte offset"),
        Figure("search to the end of the first run", search_time * 1000, "ms", "grep -F -m1", grep_time * 1000,
               note=f"found at line {found}; grep's time includes its start"),
        Figure("index size", index_kib, "KiB", "the log's size", mib * 1024, note="a newline count per 64 KiB block"),
        Figure("peak RSS while indexing", mine["rss_peak"], "MiB", "before indexing", mine["rss_before"],
               note="a fresh interpreter"),
    ]


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run, add_arguments))
