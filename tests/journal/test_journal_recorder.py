"""The journal fed by a live session against the simulator: a prompt's whole life is kept."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from pistachio_tui.comfy.session import CONNECTED, ServerSession
from pistachio_tui.comfy.stream import Backoff
from pistachio_tui.config import ServerConfig
from pistachio_tui.journal import Journal
from pistachio_tui.journal_recorder import JournalRecorder
from tests.polling import wait_for
from tests.ui.helpers import fresh_prompt

FAST = Backoff(initial=0.05, cap=0.1, jitter=0)


@contextlib.asynccontextmanager
async def journaled(sim, recorder: JournalRecorder) -> AsyncIterator[ServerSession]:
    """A session on the simulator feeding ``recorder``, connected; both closed after."""
    session = ServerSession(ServerConfig("sim", sim.url), health_interval=0.1, backoff=FAST)
    session.subscribe(recorder.on_update)
    session.start()
    try:
        await wait_for(lambda: session.state == CONNECTED)
        yield session
    finally:
        await session.stop()
        await recorder.close()


async def test_a_finished_prompt_is_journaled_with_its_prompt_and_outputs(sim, tmp_path):
    journal = Journal(tmp_path / "j.sqlite3")
    recorder = JournalRecorder(journal)
    async with journaled(sim, recorder) as session:
        prompt = fresh_prompt(sim, 1234)
        state = await session.submit(prompt)
        await wait_for(lambda: (e := journal.get(sim.url, state.prompt_id)) is not None and e.status == "success")
        entry = journal.get(sim.url, state.prompt_id)
        assert entry.prompt == prompt and entry.seed == 1234 and entry.outputs
        assert await recorder.kept_prompt(session, state.prompt_id) == prompt


async def test_history_outlives_the_server(sim, tmp_path):
    path = tmp_path / "j.sqlite3"
    async with journaled(sim, JournalRecorder(Journal(path))) as session:
        state = await session.submit(fresh_prompt(sim, 77))
        await wait_for(lambda: state.prompt_id in session.history)
    await sim.kill()
    with Journal(path) as reopened:
        [entry] = reopened.search(seed=77)
        assert entry.prompt_id == state.prompt_id and entry.status == "success"


async def test_a_disk_that_fails_is_said_once(sim, tmp_path):
    journal = Journal(tmp_path / "j.sqlite3")
    said: list[str] = []
    recorder = JournalRecorder(journal, on_error=said.append)
    journal.close()
    async with journaled(sim, recorder) as session:
        state = await session.submit(fresh_prompt(sim, 5))
        await wait_for(lambda: state.prompt_id in session.history)
        await wait_for(lambda: said)
        await asyncio.sleep(0.2)
        assert len(said) == 1 and "journal" in said[0]


async def test_the_app_journals_what_its_servers_run(sim, tmp_path):
    from pistachio_tui.config import journal_path
    from tests.ui.helpers import make_app, until

    app = make_app(tmp_path, ("sim", sim.url))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.manager.active.state == CONNECTED and app.journal is not None)
        state = await app.manager.active.submit(fresh_prompt(sim, 4242))
        await until(pilot, lambda: state.prompt_id in app.manager.active.history)
    with Journal(journal_path()) as journal:
        [entry] = journal.search(seed=4242)
        assert entry.prompt_id == state.prompt_id and entry.status == "success"


def test_a_prompt_from_another_client_is_named_by_its_save_prefix_or_checkpoint():
    """The web UI's prompt (recorded) carries its graph but no file name: its Save prefix names it."""
    from pistachio_tui.comfy.prompt_names import WORKFLOW_KEY, prompt_name
    from pistachio_tui.comfy.types import HistoryEntry
    from tests.conftest import load_fixture

    [(prompt_id, data)] = load_fixture("success.history").items()
    entry = HistoryEntry.from_wire(prompt_id, data)
    assert "workflow" in entry.extra_data["extra_pnginfo"] and WORKFLOW_KEY not in entry.extra_data
    assert prompt_name(entry.prompt, entry.extra_data) == "probe"
    ours = {"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "%date:yyyy-MM-dd%/portraits/alice"}},
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "SDXL\\juggernaut_v9.safetensors"}}}
    assert prompt_name(ours, {WORKFLOW_KEY: "alice.json"}) == "alice.json"
    assert prompt_name(ours) == "portraits/alice"
    ours["9"]["inputs"]["filename_prefix"] = "ComfyUI"
    assert prompt_name(ours) == "juggernaut_v9", "the default prefix names nothing: the checkpoint does"
    assert prompt_name({"1": {"class_type": "EmptyImage", "inputs": {}}}) is None


async def test_the_journal_names_prompts_from_here_and_from_other_clients(sim, tmp_path):
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.prompt_names import WORKFLOW_KEY

    journal = Journal(tmp_path / "j.sqlite3")
    async with journaled(sim, JournalRecorder(journal)) as session:
        ours = await session.submit(fresh_prompt(sim, 501), {WORKFLOW_KEY: "orchard.json"})
        theirs = fresh_prompt(sim, 502)
        async with ComfyClient(sim.url) as web_ui:
            queued = await web_ui.submit(theirs, {"extra_pnginfo": {"workflow": {"nodes": [], "links": []}}})

        def named(prompt_id: str) -> str | None:
            entry = journal.get(sim.url, prompt_id)
            return entry.workflow if entry is not None and entry.status == "success" else None

        await wait_for(lambda: named(ours.prompt_id) is not None and named(queued.prompt_id) is not None)
        assert named(ours.prompt_id) == "orchard.json"
        assert named(queued.prompt_id) == "pistachio", "the web UI's prompt: its SaveImage prefix"
