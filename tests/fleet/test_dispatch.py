import asyncio
import json

from pistachio_tui.fleet.dispatch import BatchRunner
from pistachio_tui.fleet.journal import JOURNAL_NAME, Journal
from pistachio_tui.fleet.spec import BatchSpec, expand
from pistachio_tui.fleet.targets import Output, TargetFailed


class FakeTarget:
    """Runs jobs in-process; can be told to die after some jobs or to reject one."""

    def __init__(self, name, slots=2, die_after=None, missing=None, bad_seed=None):
        self.name = name
        self.slots = slots
        self.die_after = die_after
        self.missing = missing
        self.bad_seed = bad_seed
        self.ran = []

    async def check(self, node_types):
        return self.missing

    async def run(self, prompt):
        await asyncio.sleep(0.001)
        if self.die_after is not None and len(self.ran) >= self.die_after:
            raise TargetFailed(f"{self.name} vanished")
        if prompt["seed"] == self.bad_seed:
            raise TargetFailed("execution error: boom", retry=False)
        self.ran.append(prompt["job"])
        return [Output("out.png", f"{prompt['job']}@{self.name}".encode())]

    async def cancel(self):
        pass

    async def aclose(self):
        pass


def build(job):
    return {"job": job.id, "seed": job.seed}


def jobs(n=60):
    return expand(BatchSpec(workflow="wf.json", count=n, seed_mode="increment", start_seed=1))


async def test_every_job_done_exactly_once_when_a_target_dies(tmp_path):
    targets = [FakeTarget("a"), FakeTarget("b", die_after=5), FakeTarget("c")]
    result = await BatchRunner(jobs(), targets, tmp_path, build).run()
    assert result.ok
    assert len(result.records) == 60
    ran = targets[0].ran + targets[1].ran + targets[2].ran
    assert sorted(ran) == sorted(j.id for j in jobs())
    assert result.targets["b"].down == "b vanished"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [j["job"] for j in manifest["jobs"]] == [j.id for j in jobs()]
    for entry in manifest["jobs"]:
        (name,) = entry["files"]
        assert (tmp_path / name).read_bytes() == f"{entry['job']}@{entry['target']}".encode()
        assert entry["params"]["seed"] == int(entry["job"][:5]) + 1


async def test_resume_reruns_nothing_that_finished(tmp_path):
    first = FakeTarget("a", slots=1, die_after=25)
    result = await BatchRunner(jobs(), [first], tmp_path, build).run()
    assert len(result.records) == 25
    assert len(result.stranded) == 35
    again = FakeTarget("a", slots=1)
    result = await BatchRunner(jobs(), [again], tmp_path, build).run()
    assert result.ok
    assert len(again.ran) == 35
    assert not set(again.ran) & set(first.ran)
    assert len(Journal(tmp_path).done) == 60


async def test_torn_journal_line_only_reruns_that_job(tmp_path):
    await BatchRunner(jobs(3), [FakeTarget("a")], tmp_path, build).run()
    journal = tmp_path / JOURNAL_NAME
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:-1] + [lines[-1][:20]]) + "\n")
    again = FakeTarget("a")
    await BatchRunner(jobs(3), [again], tmp_path, build).run()
    assert len(again.ran) == 1


async def test_execution_error_fails_the_job_without_retrying(tmp_path):
    a, b = FakeTarget("a", bad_seed=3), FakeTarget("b", bad_seed=3)
    result = await BatchRunner(jobs(6), [a, b], tmp_path, build).run()
    assert list(result.failed.values()) == ["execution error: boom"]
    assert len(result.records) == 5
    assert not result.ok


async def test_targets_lacking_nodes_are_excluded(tmp_path):
    events = []
    a, b = FakeTarget("a", missing="missing nodes: Foo"), FakeTarget("b")
    result = await BatchRunner(jobs(4), [a, b], tmp_path, build, on_event=events.append).run()
    assert result.ok and not a.ran and len(b.ran) == 4
    assert any(e.kind == "target_excluded" and e.target == "a" for e in events)


async def test_all_targets_gone_strands_the_rest(tmp_path):
    result = await BatchRunner(jobs(10), [FakeTarget("a", die_after=2)], tmp_path, build).run()
    assert len(result.records) == 2
    assert len(result.stranded) == 8
    assert json.loads((tmp_path / "manifest.json").read_text())["stranded"] == result.stranded


async def test_contact_sheet_tiles_every_image(tmp_path):
    from PIL import Image

    from pistachio_tui.fleet.contact_sheet import make_contact_sheet
    from tests.fleet.fake_serverless import PNG_1X1

    class ImageTarget(FakeTarget):
        async def run(self, prompt):
            return [Output("a.png", PNG_1X1), Output("b.latent", b"not an image")]

    result = await BatchRunner(jobs(5), [ImageTarget("a")], tmp_path, build).run()
    sheet = make_contact_sheet(tmp_path, result.records, thumb=32)
    with Image.open(sheet) as img:
        assert img.size == (3 * 32, 2 * (32 + 14))
    assert make_contact_sheet(tmp_path, [], thumb=32) is None


async def test_cancel_while_files_are_written_keeps_the_job_done(tmp_path, monkeypatch):
    import threading
    import time

    from pistachio_tui.fleet import dispatch

    writing, written, real_write = threading.Event(), threading.Event(), dispatch.write_output

    def slow_write(out_dir, name, data):
        writing.set()
        time.sleep(0.2)
        real_write(out_dir, name, data)
        written.set()

    monkeypatch.setattr(dispatch, "write_output", slow_write)
    target = FakeTarget("a", slots=1)
    runner = BatchRunner(jobs(3), [target], tmp_path, build)
    run = asyncio.create_task(runner.run())
    await asyncio.to_thread(writing.wait, 5)
    assert not written.is_set(), "the event loop runs while a file is written"
    await runner.cancel()
    result = await run
    (first,) = target.ran
    assert [r.job for r in result.records] == [first] and first not in result.stranded
    assert len(result.stranded) == 2
    assert (tmp_path / f"{first}_0.png").exists() and first in Journal(tmp_path).done
