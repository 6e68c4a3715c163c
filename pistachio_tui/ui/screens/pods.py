"""Pods screen: RunPod pods with GPU, status, uptime, cost; start, stop, terminate, open ComfyUI."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Static

from pistachio_tui.comfy.session import SessionUpdate
from pistachio_tui.config import ConfigError
from pistachio_tui.runpod.errors import RunPodError
from pistachio_tui.runpod.pods import PodSummary, comfy_server
from pistachio_tui.ui.screens.base import PistachioScreen
from pistachio_tui.ui.screens.confirm import AskScreen, ConfirmScreen

COLUMNS = ("Name", "GPU", "Status", "Uptime", "$/h", "Spend", "GPU util", "Idle")
#: RunPod rate-limits its API: one overview request this often while the screen is shown.
REFRESH_SECONDS = 10.0


def pod_row(row: PodSummary, idle) -> tuple:
    util = f"{row.gpu_util_percent:.0f}%" if row.gpu_util_percent is not None else "—"
    if idle is None:
        idle_text = ""
    elif idle.countdown is not None:
        idle_text = f"stop in {idle.countdown:.0f}s"
    else:
        idle_text = f"idle {idle.idle_seconds / 60:.0f}m" + (" ⚑" if idle.flagged else "")
    name = f"{row.name} (this pod)" if row.is_this_pod else row.name
    gpu = f"{row.gpu_count}× {row.gpu}" if row.gpu_count > 1 else row.gpu
    return (name, gpu, row.status, row.uptime, f"{row.cost_per_hr:.2f}", f"{row.spend_estimate:.2f}",
            util, idle_text)


class PodsScreen(PistachioScreen):
    """The RunPod account's pods, refreshed while the screen is open."""

    MODE = "pods"
    CSS_PATH = "pods.tcss"
    SUMMARY = "RunPod pods: cost, start/stop/terminate, open a pod's ComfyUI"
    BINDINGS = [
        Binding("s", "start_pod", "Start"),
        Binding("p", "stop_pod", "Stop"),
        Binding("T", "terminate_pod", "Terminate"),
        Binding("c", "open_comfy", "Add as server"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.client = None
        self.monitor = None
        self.state = None
        self._timer: Timer | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="pods-body"):
            yield Static("", id="pods-account")
            yield DataTable(id="pods-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self._connect()

    def _connect(self) -> None:
        from pistachio_tui.runpod.api import RunPodClient, load_api_key
        from pistachio_tui.runpod.idle import IdleGuard
        from pistachio_tui.runpod.monitor import PodsMonitor

        try:
            key = load_api_key()
        except (RunPodError, ConfigError) as exc:
            self._say(f"{getattr(exc, 'message', exc)}\n\nSet RUNPOD_API_KEY, then press r.")
            return
        self.client = RunPodClient(key)
        settings = self.papp.settings
        self.monitor = PodsMonitor(self.client, guard=IdleGuard(idle_minutes=settings.idle_minutes,
                                                                auto_stop=settings.auto_stop_idle))
        self._say("Loading pods…")

    def _say(self, text: str) -> None:
        self.query_one("#pods-account", Static).update(text)

    async def on_unmount(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self._timer is None:
            self._timer = self.set_interval(REFRESH_SECONDS, self.action_refresh)
        else:
            self._timer.resume()
        self.action_refresh()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    def refresh_view(self, update: SessionUpdate | None) -> None:
        """Pods do not depend on ComfyUI sessions; the timer refreshes them."""

    def action_refresh(self) -> None:
        if self.monitor is None:
            self._connect()
        if self.monitor is not None:
            self._refresh()

    @work(exclusive=True, group="pods")
    async def _refresh(self) -> None:
        try:
            self.state = await self.monitor.refresh()
        except RunPodError as exc:
            self._say(f"[red]{exc.message}[/]")
            return
        account = self.state.account
        left = f"  ~{account.hours_left:.0f} h left" if account.hours_left is not None else ""
        balance = f"${account.client_balance:.2f}" if account.client_balance is not None else "—"
        spend = f"${account.current_spend_per_hr or 0:.2f}/h"
        self._say(f"Balance {balance}  spending {spend}{left}  ·  {len(self.state.rows)} pod(s)")
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for row in self.state.rows:
            table.add_row(*pod_row(row, self.state.idle.get(row.id)), key=row.id)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def _selected(self) -> PodSummary | None:
        table = self.query_one(DataTable)
        if self.state is None or table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key((table.cursor_row, 0))
        return next((r for r in self.state.rows if r.id == row_key.value), None)

    def _pod_call(self, call, done: str) -> None:
        async def run() -> None:
            try:
                await call
            except RunPodError as exc:
                self.notify(exc.message, severity="error", timeout=8)
                return
            self.notify(done)
            self._refresh()
        self.run_worker(run(), group="pod-actions")

    def action_start_pod(self) -> None:
        row = self._selected()
        if row is not None:
            self._pod_call(self.client.start_pod(row.id, row.gpu_count or 1), f"Starting {row.name}")

    def action_stop_pod(self) -> None:
        row = self._selected()
        if row is not None:
            self.app.push_screen(ConfirmScreen(f"Stop {row.name}? (its volume is kept)"),
                                 lambda yes: self._pod_call(self.client.stop_pod(row.id), f"Stopping {row.name}")
                                 if yes else None)

    def action_terminate_pod(self) -> None:
        row = self._selected()
        if row is None:
            return
        question = (f"Terminate {row.name}? The pod and its volume are deleted for good.\n"
                    f"Type the pod's name ({row.name or row.id}) to confirm:")

        def answered(typed: str | None) -> None:
            # The typed text itself goes to the API, which refuses anything but the exact name.
            if typed is not None:
                self._pod_call(self.client.terminate_pod(row.id, confirm_name=typed), f"Terminated {row.name}")
        self.app.push_screen(AskScreen(question), answered)

    def action_open_comfy(self) -> None:
        row = self._selected()
        if row is None:
            return
        config = comfy_server(row)
        if config.name in self.papp.manager.sessions:
            self.papp.switch_server(config.name)
            return
        self.papp.settings.servers.append(config)
        self.papp.save()
        self.papp.manager.add(config)
        self.papp.switch_server(config.name)
