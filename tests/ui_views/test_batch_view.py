"""Batch view: a batch over in-process targets, one dying and one lacking nodes; cancel; resume."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from pistachio_tui.config import Settings
from pistachio_tui.fleet.cost import Rate
from pistachio_tui.fleet.dispatch import BatchRunner
from pistachio_tui.ui.batch.view import BatchView
from tests.fleet.test_dispatch import FakeTarget, build, jobs
from tests.ui_views.harness import ViewApp, screen_text, until


class StuckTarget(FakeTarget):
    """Accepts jobs and never finishes them, like a server that hangs."""

    async def run(self, prompt):
        await asyncio.Event().wait()


def batch_app(out_dir, make_targets, n=20, **kwargs) -> ViewApp:
    def factory(on_event):
        return BatchRunner(jobs(n), make_targets(), out_dir, build, on_event=on_event)
    return ViewApp(lambda: BatchView(Settings(), factory, **kwargs))


async def test_runs_a_batch_and_shows_targets_leaving(tmp_path):
    app = batch_app(tmp_path, lambda: [FakeTarget("a"), FakeTarget("b", die_after=3),
                                       FakeTarget("c", missing="missing nodes: Foo")])
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(BatchView)
        await pilot.press("s")
        await until(pilot, lambda: view.result is not None, "the batch to finish")
        assert view.counts()["done"] == 20 and view.result.ok
        assert view.targets["b"].down == "b vanished" and not view.targets["b"].excluded
        assert view.targets["c"].excluded
        text = screen_text(app)
        assert "done 20" in text and "down: b vanished" in text and "excluded: missing nodes: Foo" in text
        assert "All 20 jobs done" in text and str(tmp_path) in text


async def test_cancel_strands_what_was_not_finished(tmp_path):
    app = batch_app(tmp_path, lambda: [StuckTarget("slow", slots=2)], n=5)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(BatchView)
        await pilot.press("s")
        await until(pilot, lambda: view.counts()["running"] == 2, "two jobs running")
        await pilot.press("s")
        assert "already running" in str(view.status.render())
        await pilot.press("x")
        await until(pilot, lambda: view.result is not None, "the cancelled batch to end")
        assert view.counts()["stranded"] == 5
        assert "5 not run" in str(view.status.render())


async def test_resume_shows_earlier_jobs_as_done(tmp_path):
    await BatchRunner(jobs(8), [FakeTarget("a", slots=1, die_after=3)], tmp_path, build).run()
    app = batch_app(tmp_path, lambda: [FakeTarget("a")], n=8)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(BatchView)
        await pilot.press("s")
        await until(pilot, lambda: view.result is not None, "the resumed batch")
        notes = [row.note for row in view.jobs.values()]
        assert notes.count("earlier run") == 3 and view.counts()["done"] == 8


def snapshot_app(out_dir) -> ViewApp:
    def factory(on_event):
        targets = [FakeTarget("gpu-box", slots=1, bad_seed=3), FakeTarget("laptop", missing="missing nodes: Foo")]
        return BatchRunner(jobs(6), targets, out_dir, build, on_event=on_event)
    return ViewApp(lambda: BatchView(Settings(), factory, clock=lambda: 50.0))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_batch_snapshot(snap_compare, size, tmp_path, monkeypatch):
    # A relative output folder keeps the temporary path out of the snapshot.
    monkeypatch.chdir(tmp_path)

    async def finished(pilot):
        view = pilot.app.query_one(BatchView)
        await pilot.press("s")
        await until(pilot, lambda: view.result is not None, "the batch to finish")

    assert snap_compare(snapshot_app(Path("batch-out")), terminal_size=size, run_before=finished)


async def test_a_loaded_batch_shows_its_journal_then_runs_with_its_cost(tmp_path):
    await BatchRunner(jobs(4), [FakeTarget("a", slots=1, die_after=2)], tmp_path, build).run()
    ticks = itertools.count()

    def factory(on_event):
        return BatchRunner(jobs(4), [FakeTarget("pod")], tmp_path, build, on_event=on_event,
                           rates={"pod": Rate(1.0, False, "pod")}, clock=lambda: float(next(ticks)))

    app = ViewApp(lambda: BatchView(Settings()))
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(BatchView)
        await pilot.press("s")
        assert "No batch loaded" in str(view.status.render())
        view.set_batch(factory, jobs(4), ["pod"], tmp_path)
        assert view.counts()["done"] == 2 and "2 of 4 jobs to run" in str(view.status.render())
        await pilot.press("s")
        await until(pilot, lambda: view.result is not None, "the batch to finish")
        assert view.targets["pod"].cost == view.result.cost["total"] > 0
        assert f"cost so far ${view.result.cost['total']:.4f}" in screen_text(app)


async def test_a_folder_that_is_a_file_is_said_on_the_status_line(tmp_path):
    out = tmp_path / "taken"
    out.write_text("not a folder")
    app = batch_app(out, lambda: [FakeTarget("a")], n=2)
    async with app.run_test(size=(120, 30)) as pilot:
        view = app.query_one(BatchView)
        await pilot.press("s")
        await until(pilot, lambda: "is a file" in str(view.status.render()), "the refusal")
        assert view.result is None
