import asyncio
import json
import os
from pathlib import Path

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


# -- nothing hangs: every job ends done, failed or stranded, with a reason ------------------------


class OddTarget(FakeTarget):
    """Answers each job with what ``answer(prompt)`` returns or raises."""

    def __init__(self, name, answer, **kw):
        super().__init__(name, **kw)
        self.answer = answer

    async def run(self, prompt):
        await asyncio.sleep(0)
        return self.answer(prompt)


async def _run_bounded(runner):
    # Before the fix these runs never returned: a bounded wait turns a hang into a failure.
    return await asyncio.wait_for(runner.run(), 10)


async def test_unexpected_exception_in_a_target_fails_the_job_not_the_batch(tmp_path):
    def answer(prompt):
        if prompt["seed"] == 2:
            raise ValueError("Out of range float values are not JSON compliant")
        return [Output("x.png", b"img")]

    result = await _run_bounded(BatchRunner(jobs(4), [OddTarget("a", answer)], tmp_path, build))
    assert len(result.records) == 3 and not result.stranded
    (reason,) = result.failed.values()
    assert reason == "ValueError: Out of range float values are not JSON compliant"


async def test_hostile_output_names_are_saved_under_plain_names(tmp_path):
    names = iter(["a\0b.png", "x." + "e" * 300, "ok.webm", "noext"])
    result = await _run_bounded(BatchRunner(jobs(4), [OddTarget("a", lambda p: [Output(next(names), b"d")], slots=1)],
                                            tmp_path, build))
    assert result.ok
    suffixes = sorted(Path(f).suffix for r in result.records for f in r.files)
    assert suffixes == [".bin", ".png", ".png", ".webm"]


async def test_an_answer_of_the_wrong_shape_fails_the_job(tmp_path):
    result = await _run_bounded(BatchRunner(jobs(2), [OddTarget("a", lambda p: [Output("x.png", None)])],
                                            tmp_path, build))
    assert not result.records and set(result.failed) == {j.id for j in jobs(2)}
    assert all("could not be saved" in why for why in result.failed.values())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("0")], "no partial output is left"


async def test_disk_full_while_saving_fails_the_job_and_keeps_no_partial_file(tmp_path, monkeypatch):
    import errno

    from pistachio_tui.fleet import dispatch

    calls = []

    def full(out_dir, name, data):
        calls.append(name)
        if len(calls) % 2 == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        (out_dir / name).write_bytes(data)

    monkeypatch.setattr(dispatch, "write_output", full)
    two = OddTarget("a", lambda p: [Output("1.png", b"a"), Output("2.png", b"b")], slots=1)
    result = await _run_bounded(BatchRunner(jobs(2), [two], tmp_path, build))
    assert not result.records and len(result.failed) == 2
    assert all("No space left on device" in why for why in result.failed.values())
    assert not list(tmp_path.glob("0*_0.png")), "a job is all its files or none"


async def test_a_broken_event_listener_does_not_stop_the_batch(tmp_path):
    def listener(event):
        raise RuntimeError("UI bug")

    result = await _run_bounded(BatchRunner(jobs(3), [FakeTarget("a")], tmp_path, build, on_event=listener))
    assert result.ok and len(result.records) == 3


async def test_a_check_that_raises_excludes_the_target(tmp_path):
    class Broken(FakeTarget):
        async def check(self, node_types):
            raise KeyError("devices")

    result = await _run_bounded(BatchRunner(jobs(2), [Broken("a"), FakeTarget("b")], tmp_path, build))
    assert result.ok and result.targets["a"].down == "KeyError: 'devices'"


async def test_stranded_jobs_say_why(tmp_path):
    result = await BatchRunner(jobs(4), [FakeTarget("a", die_after=1, slots=1)], tmp_path, build).run()
    assert result.stranded and result.stranded_reason == "every target left: a: a vanished"
    assert json.loads((tmp_path / "manifest.json").read_text())["stranded_reason"] == result.stranded_reason


async def test_output_folder_that_is_a_file_is_refused(tmp_path):
    from pistachio_tui.fleet.journal import BatchFolderError

    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    try:
        await _run_bounded(BatchRunner(jobs(2), [FakeTarget("a")], blocker, build))
    except BatchFolderError as exc:
        assert "is a file" in str(exc)
    else:
        raise AssertionError("a file as the batch folder was accepted")


# -- one run per folder, one workflow per folder ----------------------------------------------------


async def test_a_second_run_into_the_same_folder_is_refused_and_names_the_holder(tmp_path):
    from pistachio_tui.fleet.journal import BatchFolderBusy

    gate = asyncio.Event()

    class Gated(FakeTarget):
        async def run(self, prompt):
            await gate.wait()
            return await super().run(prompt)

    first = Gated("a", slots=1)
    running = asyncio.create_task(BatchRunner(jobs(2), [first], tmp_path, build).run())
    await asyncio.sleep(0.05)
    second = FakeTarget("b")
    try:
        await BatchRunner(jobs(2), [second], tmp_path, build).run()
    except BatchFolderBusy as exc:
        assert f"pid {os.getpid()}" in str(exc)
    else:
        raise AssertionError("two runs shared one batch folder")
    gate.set()
    assert (await running).ok
    assert not second.ran and len(first.ran) == 2
    # The lock goes with the run: the next one may use the folder.
    assert (await BatchRunner(jobs(2), [FakeTarget("c")], tmp_path, build).run()).ok


async def test_a_folder_of_another_workflow_is_refused(tmp_path):
    from pistachio_tui.fleet.journal import WorkflowChanged

    assert (await BatchRunner(jobs(2), [FakeTarget("a")], tmp_path, build, workflow="aaaa").run()).ok
    again = FakeTarget("a")
    assert (await BatchRunner(jobs(2), [again], tmp_path, build, workflow="aaaa").run()).ok
    assert not again.ran
    try:
        await BatchRunner(jobs(2), [FakeTarget("a")], tmp_path, build, workflow="bbbb").run()
    except WorkflowChanged as exc:
        assert "another version of this workflow" in str(exc)
    else:
        raise AssertionError("an edited workflow resumed the old batch")


async def test_a_symlink_planted_at_the_journal_is_not_followed(tmp_path):
    from pistachio_tui.fleet.journal import JOURNAL_NAME as name

    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(elsewhere)
    result = await _run_bounded(BatchRunner(jobs(1), [FakeTarget("a")], out, build))
    assert elsewhere.read_text() == "precious\n"
    assert not result.records and "symlink" in next(iter(result.failed.values()))


class RefusingTarget(FakeTarget):
    """A healthy server whose validation refuses some seeds (a grid value beyond an input's
    max, a model only another server has), as ComfyTarget reports a rejected prompt."""

    def __init__(self, name, refuses, **kwargs):
        super().__init__(name, **kwargs)
        self.refuses = refuses
        self.refused = []

    async def run(self, prompt):
        if prompt["seed"] in self.refuses:
            self.refused.append(prompt["job"])
            raise TargetFailed("rejected: Value 100000 bigger than max of 10000", refused=True)
        return await super().run(prompt)


async def test_refused_jobs_fail_without_taking_a_healthy_server_down(tmp_path):
    """One bad grid value made every one of its jobs a failure of the only server: three of
    them took it "down", the good jobs were stranded and the batch said "unreachable"."""
    target = RefusingTarget("a", refuses=set(range(1, 31)))
    result = await asyncio.wait_for(BatchRunner(jobs(60), [target], tmp_path, build).run(), 30)
    assert result.targets["a"].down is None
    assert len(result.records) == 30 and not result.stranded
    assert len(result.failed) == 30 and all("rejected" in why for why in result.failed.values())
    assert sorted(target.refused) == sorted(result.failed)  # each refused once, not retried on it


async def test_a_job_one_server_refuses_runs_on_another(tmp_path):
    picky, broad = RefusingTarget("picky", refuses=set(range(1, 61))), FakeTarget("broad")
    result = await asyncio.wait_for(BatchRunner(jobs(20), [picky, broad], tmp_path, build).run(), 30)
    assert result.ok and len(result.records) == 20
    assert result.targets["picky"].down is None and not picky.ran
