"""Run every ``bench_*.py`` script, print one table, save the figures as JSON.

Each script runs in its own process so that one benchmark's memory or threads
cannot colour another's figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Figure, format_table

HERE = Path(__file__).parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a fast look")
    parser.add_argument("--only", action="append", default=[], help="run only scripts whose name contains this")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON results")
    args = parser.parse_args(argv)
    scripts = sorted(p for p in HERE.glob("bench_*.py") if not args.only or any(o in p.stem for o in args.only))
    figures: list[Figure] = []
    failed = []
    for script in scripts:
        print(f"running {script.stem} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", f"benchmarks.{script.stem}", "--json"] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
        if proc.returncode != 0:
            failed.append(script.stem)
            print(proc.stderr[-2000:], file=sys.stderr)
            continue
        for item in json.loads(proc.stdout):
            item.pop("ratio", None)
            figures.append(Figure(**item))
    print(format_table(figures))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / time.strftime("%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps([f.as_dict() for f in figures], indent=2))
    print(f"\nsaved {out}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
