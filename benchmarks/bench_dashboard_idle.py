"""Idle CPU of the real app, as a percentage of one core, against a minimal Textual app idling as long.

Two simulated ComfyUI servers (own processes, nothing queued) are followed
by the real ``PistachioApp`` as ``pistachio`` starts it (health and VRAM
polled at the app's default interval), headless at 120×40, with
``gpu_interval = 1`` s. Measured on the dashboard (``pistachio dashboard``:
its VRAM sparkline comes from the health polls) and on the GPU screen
(target: ≤ 2 % of one core), whose view samples every server each second. Each
measurement is a fresh interpreter; after a warm-up (connections made, first
polls answered) CPU is process time over wall time for a fixed window. The
yardstick is a minimal Textual app (header, table, footer) measured the same
way in the same run. Redraws per second during the window are noted too.
"""

from __future__ import annotations

import asyncio

from benchmarks.common import Figure, bench_main, cpu_percent_during
from benchmarks.headless import RedrawCounter, in_child, minimal_app, pistachio_app, run_headless, sims, wait_for

WARM_UP = 3.0


async def _forever() -> None:
    await asyncio.Event().wait()


async def idle_cpu(which: str, urls: list[str], seconds: float) -> dict:
    """Child side: CPU% of one core and redraws/s of ``which`` (minimal, dashboard, gpu) at rest."""
    app = minimal_app() if which == "minimal" else pistachio_app(urls, dashboard=which == "dashboard")

    async def measure(app) -> dict:
        note = ""
        if which == "gpu":
            await app.switch_mode("gpu")
        if which != "minimal":
            await wait_for(lambda: all(s.state == "connected" for s in app.manager.sessions.values()),
                           30, "both simulated servers to connect")
        await asyncio.sleep(WARM_UP)
        redraws = RedrawCounter(app)
        cpu = await cpu_percent_during(_forever, seconds)
        if which == "gpu":
            note = local_gpu_notice(app)
        return {"cpu": cpu, "redraws": redraws.count / seconds, "note": note,
                "health": getattr(getattr(app, "manager", None), "health_interval", 0)}

    return await run_headless(app, measure)


def local_gpu_notice(app) -> str:
    """What the GPU screen says about this machine's own GPUs (no driver here, or not wired)."""
    from textual.widgets import Static

    notice = app.screen.query_one("#gpu-local", Static)
    return str(notice.render()).strip() if notice.display else "local GPUs sampled"


def run(args) -> list[Figure]:
    seconds = 5.0 if args.quick else 10.0
    with sims(2) as urls:
        minimal = in_child("bench_dashboard_idle:idle_cpu", which="minimal", urls=urls, seconds=seconds)
        dash = in_child("bench_dashboard_idle:idle_cpu", which="dashboard", urls=urls, seconds=seconds)
        gpu = in_child("bench_dashboard_idle:idle_cpu", which="gpu", urls=urls, seconds=seconds)
    window = f"{seconds:g} s window; server health polled every {dash['health']:g} s"
    return [
        Figure("dashboard idle, 2 servers", dash["cpu"], "% of one core", "minimal Textual app",
               minimal["cpu"], note=f"{window}; {dash['redraws']:.1f} redraws/s"),
        Figure("GPU screen idle, 2 servers, 1 s sampling", gpu["cpu"], "% of one core", "minimal Textual app",
               minimal["cpu"], note=f"target ≤ 2 %; {window}; {gpu['redraws']:.1f} redraws/s; "
                                    f"local GPUs: {gpu['note']}"),
    ]


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__.splitlines()[0], run))
