"""Run every ``bench_*.py`` script, print one table, save the figures as JSON.

Each script runs in its own process so that one benchmark's memory or threads
cannot colour another's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Figure, format_table

HERE = Path(__file__).parent


def _cell(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def compare(old: Path, new: Path) -> str:
    """Figures of two saved runs side by side; the ratios are what carries over between machines."""
    def load(path: Path) -> dict[tuple[str, str], dict]:
        return {(f["name"], f["yardstick"]): f for f in json.loads(path.read_text())}

    a, b = load(old), load(new)
    rows = [("figure", "yardstick", "value A", "value B", "ratio A", "ratio B", "B/A (ratio)")]
    for key in list(a) + [k for k in b if k not in a]:
        fa, fb = a.get(key, {}), b.get(key, {})
        ra, rb = fa.get("ratio"), fb.get("ratio")
        change = f"{rb / ra:.3g}×" if ra and rb is not None else ""
        unit = fb.get("unit") or fa.get("unit", "")
        rows.append((key[0], key[1], f"{_cell(fa.get('value'))} {unit}".strip() if fa else "—",
                     f"{_cell(fb.get('value'))} {unit}".strip() if fb else "—", _cell(ra), _cell(rb), change))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a fast look")
    parser.add_argument("--only", action="append", default=[], help="run only scripts whose name contains this")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON results")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"),
                        help="print two saved results side by side instead of running")
    args = parser.parse_args(argv)
    if args.compare:
        print(compare(*args.compare))
        return 0
    scripts = sorted(p for p in HERE.glob("bench_*.py") if not args.only or any(o in p.stem for o in args.only))
    figures: list[Figure] = []
    failed = []
    for script in scripts:
        # What the script before wrote (a 1 GiB log, 200 MB downloads) is flushed first: the kernel's
        # writeback would otherwise take CPU from this script's figures.
        os.sync()
        print(f"running {script.stem} ...", end="", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", f"benchmarks.{script.stem}", "--json"] + (["--quick"] if args.quick else [])
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
        print(f" {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        if proc.returncode != 0:
            failed.append(script.stem)
            print(proc.stderr[-2000:], file=sys.stderr)
            continue
        for item in json.loads(proc.stdout):
            item.pop("ratio", None)
            figures.append(Figure(**item))
    main_rows = [f for f in figures if not f.name.startswith("scale: ")]
    if main_rows:
        print(format_table(main_rows))
    if len(main_rows) < len(figures):
        print("\nHow cost grows (each size against the smallest, or against its yardstick)\n")
        print(format_table(f for f in figures if f.name.startswith("scale: ")))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / time.strftime("%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps([f.as_dict() for f in figures], indent=2))
    print(f"\nsaved {out}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
