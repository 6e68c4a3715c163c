"""How cost grows: each figure at three sizes, against the same figure at the smallest size.

- start-up (first paint) with 1 / 10 / 50 configured servers;
- the Queue screen's history redraw with 100 / 10k / 100k prompts in the journal:
  the newest page read from the journal and the history table refilled, as
  one blocking step of the event loop (what a person would feel as a stall);
- fleet throughput with 3 / 10 / 30 simulated servers (yardstick: one server;
  the ideal ratio is N);
- opening and indexing a log of 64 MiB / 1 GiB / 4 GiB, with the indexer's
  peak RSS (yardstick: ``wc -l``; RSS against the 64 MiB run: must stay flat).

Figures are named ``scale: ...`` so ``python -m benchmarks`` prints them as a
table of their own. ``--quick`` keeps the small and middle sizes only.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import OrderedDict

from benchmarks.bench_biglog import index_in_child, synthetic_log, wc_lines
from benchmarks.bench_fleet import throughput
from benchmarks.bench_journal_startup import synthetic_journal
from benchmarks.bench_startup import measure
from benchmarks.common import Figure, bench_main
from benchmarks.headless import in_child, pistachio_app, run_headless

#: Rows the Queue screen's history shows: one journal page.
PAGE = 100


async def queue_redraw(entries: int, runs: int = 7) -> dict:
    """Median seconds of one history redraw of the Queue screen over a journal of ``entries`` prompts."""
    from pistachio_tui.comfy.types import HistoryEntry
    from pistachio_tui.journal import Journal
    from pistachio_tui.ui.queue.screen import QueueScreen

    app = pistachio_app(["http://127.0.0.1:9"])

    async def measure_redraw(app) -> dict:
        screen = await app.show_screen(QueueScreen)
        session = app.manager.active
        times = []
        with Journal(synthetic_journal(entries), max_entries=entries) as journal:
            for _ in range(runs + 1):
                start = time.perf_counter()
                page = journal.search(limit=PAGE)
                session.history = OrderedDict(
                    (e.prompt_id, HistoryEntry(prompt_id=e.prompt_id, number=n, prompt=e.prompt, status=e.status,
                                               completed=True, outputs=[], messages=[], started_at=e.started_at,
                                               finished_at=e.finished_at, error=None, raw={}))
                    for n, e in enumerate(page))
                screen.refresh_view(None)
                times.append(time.perf_counter() - start)
                await asyncio.sleep(0.05)  # let the frame go out before the next run
        return {"seconds": statistics.median(times[1:])}

    return await run_headless(app, measure_redraw)


def grow(figures: list[Figure], what: str, sizes: list[int | str], values: list[float], unit: str,
         yardstick: str, yardsticks: list[float], note: str = "") -> None:
    for size, value, yard in zip(sizes, values, yardsticks):
        figures.append(Figure(f"scale: {what} @ {size}", value, unit, yardstick, yard, note=note))


def run(args) -> list[Figure]:
    figures: list[Figure] = []
    runs = 3 if args.quick else 5

    servers = [1, 10] if args.quick else [1, 10, 50]
    paints = [measure("pistachio", runs, servers=n)[0] for n in servers]
    grow(figures, "first paint, servers", servers, paints, "s", "1 server", [paints[0]] * len(paints),
         note="flat is the goal")

    entries = [100, 10_000] if args.quick else [100, 10_000, 100_000]
    redraws = [in_child("bench_scaling:queue_redraw", entries=n)["seconds"] * 1000 for n in entries]
    grow(figures, "Queue history redraw, journal prompts", entries, redraws, "ms", "100 prompts",
         [redraws[0]] * len(redraws), note=f"newest {PAGE} read and drawn; flat is the goal")

    fleet = [3, 10] if args.quick else [3, 10, 30]
    step_delay = 0.05  # 10 steps: half a second a job, so dispatch and the simulators' CPU stay small beside it
    one = asyncio.run(throughput(1, 4, step_delay))
    rates = [asyncio.run(throughput(n, 2 * n, step_delay)) for n in fleet]
    grow(figures, "fleet throughput, servers", fleet, rates, "jobs/s", "one server", [one] * len(rates),
         note="ideal ratio N")

    sizes = ["64M", "1G"] if args.quick else ["64M", "1G", "4G"]
    logs = [synthetic_log({"64M": 2**26, "1G": 2**30, "4G": 2**32}[s]) for s in sizes]
    results, wcs = [], []
    for path in logs:
        wc_lines(path)  # into the OS cache first
        wcs.append(wc_lines(path)[1])
        results.append(index_in_child(path))
    grow(figures, "log open+index", sizes, [r["seconds"] for r in results], "s", "wc -l", wcs,
         note="linear in the size; goal ≤ 2× wc -l")
    grow(figures, "log index peak RSS", sizes, [r["rss_peak"] for r in results], "MiB", "64M run",
         [results[0]["rss_peak"]] * len(results), note="flat is the goal")
    return figures


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run))
