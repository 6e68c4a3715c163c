"""Dashboard: one compact screen for a tmux pane — servers, running prompt, VRAM, training, pods."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from pistachio_tui.comfy.session import ServerSession, SessionUpdate, UpdateKind
from pistachio_tui.config import ConfigError
from pistachio_tui.runpod.errors import RunPodError
from pistachio_tui.ui.base import PistachioScreen
from pistachio_tui.ui.format import esc, gib, state_text
from pistachio_tui.ui.gpu.graph import GraphData, HistoryGraph
from pistachio_tui.ui.widgets.fitted_footer import FittedFooter
from pistachio_tui.ui.widgets.status_header import StatusHeader

if TYPE_CHECKING:
    from pistachio_tui.runpod.monitor import PodsMonitor

#: RunPod rate-limits its API; a dashboard needs no fresher pod data than this.
PODS_SECONDS = 30.0


def servers_table(app) -> Table:
    table = Table(box=None, expand=True, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("Server", no_wrap=True, overflow="ellipsis", ratio=1)
    table.add_column("State", no_wrap=True, min_width=14)
    table.add_column("Q", no_wrap=True, justify="right")
    table.add_column("VRAM free", no_wrap=True, min_width=11)
    for session in app.manager.sessions.values():
        device = session.stats.main_device if session.stats else None
        queued = len(session.queue.running) + len(session.queue.pending)
        table.add_row(Text(session.name), state_text(session.state), str(queued) if session.stats else "—",
                      f"{gib(device.vram_free)}/{gib(device.vram_total)}" if device else "—")
    if not app.manager.sessions:
        table.add_row(Text("no servers configured", style="dim"), "", "", "")
    return table


class DashboardScreen(PistachioScreen):
    """Read-only overview; number keys still lead to the full screens."""

    MODE = "dashboard"
    CSS_PATH = "screen.tcss"
    SUMMARY = "Compact overview for a tmux pane"
    BINDINGS = [Binding("i", "app.interrupt", "Interrupt")]

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        with Horizontal(id="dash-top"):
            yield Static(id="dash-servers")
            with Vertical(id="dash-run"):
                yield Static("Idle", id="dash-run-title")
                yield ProgressBar(total=100, show_eta=False, id="dash-progress")
                yield HistoryGraph("VRAM used (active server)", id="dash-vram")
        with Horizontal(id="dash-bottom"):
            yield Static("[b]Training[/b]\nno run followed yet", id="dash-training")
            yield Static("[b]Pods[/b]\nno RunPod key (see 7 Pods)", id="dash-pods")
        yield FittedFooter()

    def refresh_view(self, update: SessionUpdate | None) -> None:
        self.query_one("#dash-servers", Static).update(servers_table(self.papp))
        session = self.session
        state = session.running() if session else None
        if state is None:
            self.query_one("#dash-run-title", Static).update("Idle — nothing running")
            self.query_one(ProgressBar).update(progress=0)
        else:
            # The Queue screen's module (and the workflow modules it needs) loads when a prompt runs.
            from pistachio_tui.ui.queue.screen import progress_line

            node = state.current_title or state.current_node or "—"
            self.query_one("#dash-run-title", Static).update(
                f"[b]{state.prompt_id[:8]}[/b] {esc(node)}\n{progress_line(state)}")
            self.query_one(ProgressBar).update(progress=round(state.fraction * 100, 1))
        if update is None or update.kind == UpdateKind.HEALTH:
            self._show_vram(session)

    def _show_vram(self, session: ServerSession | None) -> None:
        """The active server's VRAM on the same fixed 0-100 % scale as the GPU screen (never auto-scaled)."""
        samples = [fraction * 100 for fraction in session.vram_used] if session else []
        # Health polls are evenly spaced, which is all the time axis needs.
        step = self.papp.manager.health_interval
        self.query_one("#dash-vram", HistoryGraph).data = GraphData(
            tuple(samples), tuple(i * step for i in range(len(samples))))

    def on_mount(self) -> None:
        self.refresh_view(None)
        # RunPod's client (and httpx) load after the first paint; the panel shows its hint till then.
        self.call_after_refresh(self._follow_pods)

    def _follow_pods(self) -> None:
        try:
            monitor = self.papp.runpod()
        except (RunPodError, ConfigError):
            return  # no key: the panel keeps its hint
        self.set_interval(PODS_SECONDS, lambda: self._refresh_pods(monitor))
        self._refresh_pods(monitor)

    @work(exclusive=True, group="dash-pods")
    async def _refresh_pods(self, monitor: PodsMonitor) -> None:
        from pistachio_tui.ui.pods.view import account_line

        panel = self.query_one("#dash-pods", Static)
        try:
            # The Pods screen may have refreshed the shared monitor moments ago: reuse that.
            state = await monitor.recent(PODS_SECONDS)
        except RunPodError as exc:
            panel.update(Text.assemble(("Pods\n", "bold"), (exc.message, "red")))
            return
        idle = sum(1 for info in state.idle.values() if info.flagged)
        flagged = Text(f"\n{idle} idle pod(s) flagged", style="yellow") if idle else Text("")
        panel.update(Text.assemble(("Pods\n", "bold"), account_line(state), flagged))
