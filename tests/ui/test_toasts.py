"""Finished prompts are toasted only when this app queued them; failures always are."""

from __future__ import annotations

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.session import CONNECTED, UpdateKind

from .helpers import fresh_prompt, make_app, until


async def test_only_our_successes_are_toasted_but_every_failure_is(sim, tmp_path):
    app = make_app(tmp_path, ("sim", sim.url))
    toasts: list[tuple[str, str]] = []
    app.notify = lambda message, *, title="", severity="information", **_: toasts.append((title, message))
    finished: set[str] = set()
    async with app.run_test(size=(100, 30)) as pilot, ComfyClient(sim.url) as other:
        await until(pilot, lambda: app.manager.active.state == CONNECTED)
        session = app.manager.active
        # Subscribed after the app, so each FINISHED reaches the app's toasts first.
        session.subscribe(lambda u: finished.add(u.prompt.prompt_id) if u.kind == UpdateKind.FINISHED else None)

        async def from_elsewhere(seed: int) -> str:
            # No client_id, as a script or the demo's loop queues it.
            answer = await other.post_json("/prompt", {"prompt": fresh_prompt(sim, seed)})
            return answer["prompt_id"]

        def toasted(prompt_id: str) -> list[str]:
            return [message for title, message in toasts if title == "sim" and message.startswith(prompt_id[:8])]

        theirs = await from_elsewhere(1)
        await until(pilot, lambda: theirs in finished)
        assert toasted(theirs) == []

        ours = (await session.submit(fresh_prompt(sim, 2))).prompt_id
        await until(pilot, lambda: ours in finished)
        assert len(toasted(ours)) == 1 and "finished" in toasted(ours)[0]

        sim.fail_class("KSampler", "boom")
        failed = await from_elsewhere(3)
        await until(pilot, lambda: failed in finished)
        assert len(toasted(failed)) == 1 and "failed in" in toasted(failed)[0] and "boom" in toasted(failed)[0]


async def test_a_prompt_the_server_forgot_is_toasted_as_lost(tmp_path):
    from pistachio_tui.sim.server import SimServer

    slow = SimServer(step_delay=0.05)
    await slow.start()
    app = make_app(tmp_path, ("slow", slow.url))
    toasts: list[str] = []
    app.notify = lambda message, **_: toasts.append(message)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.manager.active.state == CONNECTED)
            state = await app.manager.active.submit(fresh_prompt(slow, 4))
            await until(pilot, lambda: state.value > 0)
            await slow.restart(0.05)
            await until(pilot, lambda: any(m.startswith(state.prompt_id[:8]) for m in toasts))
            (message,) = [m for m in toasts if m.startswith(state.prompt_id[:8])]
            assert "is lost" in message and "queue it again" in message
    finally:
        await slow.stop()


def test_news_goes_quickly_and_errors_stay_long_enough_to_read(tmp_path, monkeypatch):
    from textual.app import App

    from pistachio_tui.ui.app import TOAST_SECONDS

    shown: dict[str, float] = {}
    monkeypatch.setattr(App, "notify", lambda self, message, *, timeout, **_: shown.__setitem__(message, timeout))
    app = make_app(tmp_path)
    app.notify("saved", title="Screenshot")
    app.notify("the server refused", severity="error")
    app.notify("told to stay", timeout=30)
    assert shown == {"saved": TOAST_SECONDS["information"], "the server refused": TOAST_SECONDS["error"],
                     "told to stay": 30}
    assert TOAST_SECONDS["information"] < TOAST_SECONDS["warning"] < TOAST_SECONDS["error"]
