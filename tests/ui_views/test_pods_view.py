"""Pods view: Pilot tests against the fake RunPod API, and snapshots from an in-memory client."""

from __future__ import annotations

import pytest

from pistachio_tui.config import Settings
from pistachio_tui.sim.runpod import FakeRunPod
from pistachio_tui.ui.dialogs import TypeToConfirm
from pistachio_tui.ui.pods.view import PodsView
from tests.ui_views.harness import ViewApp, screen_text, until
from tests.ui_views.pods_fakes import StubRunPod, comfy_probe_http, frozen_monitor


@pytest.fixture
async def fake(monkeypatch):
    async with FakeRunPod() as server:
        monkeypatch.setenv("RUNPOD_API_URL", server.url)
        monkeypatch.setenv("RUNPOD_API_KEY", server.api_key)
        yield server


def pods_app(settings: Settings | None = None, **kwargs) -> ViewApp:
    settings = settings or Settings()
    kwargs.setdefault("comfy_http", comfy_probe_http())
    return ViewApp(lambda: PodsView(settings, id="pods", **kwargs))


def view(app: ViewApp) -> PodsView:
    return app.query_one(PodsView)


async def loaded(pilot) -> PodsView:
    pods = view(pilot.app)
    await until(pilot, lambda: pods.state is not None and pods.comfy_ok, "the first refresh")
    return pods


async def select(pilot, pods: PodsView, name: str) -> None:
    table = pods.query_one("#pods-table")
    table.focus()
    row_id = next(r.id for r in pods.state.rows if r.name == name)
    table.move_cursor(row=table.get_row_index(row_id))
    await pilot.pause()


async def test_lists_pods_with_account_and_never_shows_the_key(fake):
    app = pods_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pods = await loaded(pilot)
        assert [r.name for r in pods.state.rows] == ["comfy-4090", "trainer-h100", "old-a40"]
        assert pods.comfy_ok["abc123xyz"] is True
        assert "502" in pods.comfy_ok["def456uvw"]
        text = screen_text(app)
        assert "Balance $25.00" in text and "$3.68/h" in text
        assert "trainer-h100" in text and "H100 80GB" in text and "stopped" in text
        assert fake.api_key not in text
        assert fake.api_key[-4:] not in text


async def test_stops_and_starts_a_pod(fake):
    app = pods_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pods = await loaded(pilot)
        await select(pilot, pods, "comfy-4090")
        await pilot.press("x", "y")
        await until(pilot, lambda: fake.pod("abc123xyz")["desiredStatus"] == "EXITED", "the stop")
        await until(pilot, lambda: pods.selected().status == "stopped", "the refresh after the stop")
        assert pods.selected().name == "comfy-4090"
        await pilot.press("s")
        await until(pilot, lambda: fake.pod("abc123xyz")["desiredStatus"] == "RUNNING", "the start")
        assert "podTerminate" not in fake.operations()


async def test_terminate_refuses_without_the_typed_name(fake):
    app = pods_app()
    async with app.run_test(size=(80, 24)) as pilot:
        pods = await loaded(pilot)
        await select(pilot, pods, "old-a40")
        await pilot.press("t")
        assert isinstance(app.screen, TypeToConfirm)
        await pilot.press(*"old-a4", "enter")
        await pilot.pause()
        assert "Not terminated" in str(pods.status.render())
        await pilot.press("t", "escape")
        await pilot.pause()
        assert fake.pod("ghi789rst") is not None
        assert "podTerminate" not in fake.operations()
        await pilot.press("t", *"old-a40", "enter")
        await until(pilot, lambda: fake.pod("ghi789rst") is None, "the terminate")
        await until(pilot, lambda: len(pods.state.rows) == 2, "the refresh after terminate")


async def test_flags_an_idle_pod_with_its_cost_and_cancels_the_countdown(fake):
    settings = Settings(idle_minutes=0.0, auto_stop_idle=True)
    app = pods_app(settings, monitor_factory=lambda client: frozen_monitor(client, auto_stop=True))
    async with app.run_test(size=(120, 40)) as pilot:
        pods = await loaded(pilot)
        idle = pods.state.idle
        assert idle["def456uvw"].flagged and idle["def456uvw"].countdown == 90.0
        assert "abc123xyz" not in idle
        text = screen_text(app)
        assert "stop 1m 30s" in text
        await select(pilot, pods, "trainer-h100")
        assert "auto-stop in 1m 30s (k cancels)" in screen_text(app)
        await pilot.press("k")
        await until(pilot, lambda: pods.state.idle["def456uvw"].countdown is None, "the cancelled countdown")
        assert "cancelled" in str(pods.status.render())
        assert fake.pod("def456uvw")["desiredStatus"] == "RUNNING"


async def test_copy_ssh_and_add_as_server(fake):
    app = pods_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pods = await loaded(pilot)
        await select(pilot, pods, "comfy-4090")
        await pilot.press("c")
        assert app.clipboard_text == "ssh root@203.0.113.7 -p 40022 -i ~/.ssh/id_ed25519"
        assert "Copied: ssh root@203.0.113.7" in screen_text(app)
        await pilot.press("a")
        await pilot.pause()
        (message,) = app.posted
        assert message.server.url == "https://abc123xyz-8188.proxy.runpod.net"


async def test_price_table_puts_presets_first(fake):
    app = pods_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pods = await loaded(pilot)
        await pilot.press("p")
        prices = pods.query_one("#pods-prices")
        await until(pilot, lambda: prices.row_count == 4, "the GPU prices")
        assert prices.get_row_at(0)[1].plain == "RTX 4090"
        assert "★" in screen_text(app)


async def test_rate_limit_is_shown_not_raised(fake):
    fake.rate_limited = 30
    app = pods_app()
    async with app.run_test(size=(80, 24)) as pilot:
        pods = view(app)
        await until(pilot, lambda: "rate limiting" in str(pods.status.render()), "the error line")
        assert pods.state is None


async def test_without_a_key_explains_how_to_set_it():
    app = pods_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "No RunPod API key" in text and "RUNPOD_API_KEY" in text and "chmod 600" in text
        await pilot.press("r", "x")
        assert view(app).client is None


def snapshot_app() -> ViewApp:
    settings = Settings(idle_minutes=0.0, auto_stop_idle=True)
    return ViewApp(lambda: PodsView(settings, client_factory=StubRunPod, comfy_http=comfy_probe_http(),
                                    monitor_factory=lambda c: frozen_monitor(c, auto_stop=True)))


async def _settled(pilot) -> None:
    pods = pilot.app.query_one(PodsView)
    await until(pilot, lambda: pods.state is not None and pods.comfy_ok, "the first refresh")
    pilot.app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_pods_snapshot(snap_compare, size):
    assert snap_compare(snapshot_app(), terminal_size=size, run_before=_settled)


def test_pods_no_key_snapshot(snap_compare, monkeypatch):
    # The help names the secrets file: a fixed config dir keeps the snapshot stable.
    monkeypatch.setenv("PISTACHIO_CONFIG_DIR", "~/.config/pistachio")
    assert snap_compare(ViewApp(lambda: PodsView(Settings())), terminal_size=(80, 24))


async def test_the_pods_logs_are_one_key_away(fake):
    from pistachio_tui.ui.dialogs import TextModal

    fake.logs["def456uvw"] = [("system", "pulling image runpod/pytorch"), ("container", "ComfyUI crashed: OOM")]
    app = pods_app()
    async with app.run_test(size=(120, 40)) as pilot:
        pods = await loaded(pilot)
        await select(pilot, pods, "trainer-h100")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, TextModal), "the logs dialog")
        await pilot.pause()
        text = screen_text(app)
        assert "ComfyUI crashed: OOM" in text and "Logs of trainer-h100" in text
