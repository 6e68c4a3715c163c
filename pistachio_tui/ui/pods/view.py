"""The Pods view: RunPod pods with cost, idle flags, start/stop/terminate and GPU prices.

Everything it shows comes from ``runpod.monitor.PodsMonitor`` (one refresh every
``refresh_interval`` seconds in a worker); actions call ``runpod.api.RunPodClient``.
The API key is never displayed: only the monitor and client hold it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from pistachio_tui import config
from pistachio_tui.config import ConfigError, ServerConfig, Settings
from pistachio_tui.format import duration, money
from pistachio_tui.runpod.api import RunPodClient, load_api_key
from pistachio_tui.runpod.errors import ApiKeyMissing, RunPodError
from pistachio_tui.runpod.idle import ActivityResumed, IdleFlagged, IdleGuard
from pistachio_tui.runpod.models import GpuType
from pistachio_tui.runpod.monitor import IdleInfo, PodsMonitor, PodsState
from pistachio_tui.runpod.pods import (
    PodSummary,
    comfy_server,
    money_warnings,
    probe_comfy,
    short_gpu_name,
)
from pistachio_tui.ui.dialogs import TextModal, TypeToConfirm, YesNo
from pistachio_tui.ui.format import esc
from pistachio_tui.ui.widgets.filter_table import FilterTable
from pistachio_tui.ui.widgets.status_line import StatusLine

#: GPUs the training presets are written for: highlighted in the price table.
#: (name fragment, VRAM in GB or None for any size)
PRESET_GPUS: tuple[tuple[str, int | None], ...] = (("H200", None), ("A100", 80), ("RTX 4090", None))

COMMANDS: list[tuple[str, str, str]] = [
    ("Pods: refresh", "Fetch pods, balance and spend from RunPod now", "refresh"),
    ("Pods: start pod", "Resume the selected stopped pod", "start_pod"),
    ("Pods: stop pod", "Stop the selected pod (its volume is kept)", "stop_pod"),
    ("Pods: terminate pod", "Delete the selected pod and its volume (asks for its name)", "terminate_pod"),
    ("Pods: show logs", "The selected pod's last log lines (why ComfyUI is not up yet)", "pod_logs"),
    ("Pods: copy SSH command", "Copy the selected pod's SSH command to the clipboard", "copy_ssh"),
    ("Pods: add as ComfyUI server", "Add the selected pod's ComfyUI to the servers list", "add_server"),
    ("Pods: GPU prices", "Show or hide RunPod's GPU price table", "toggle_prices"),
    ("Pods: cancel auto-stop", "Cancel the idle auto-stop countdown of the selected pod", "cancel_auto_stop"),
]

_DOING = {"start": "Starting", "stop": "Stopping", "terminate": "Terminating"}
_DONE = {"start": "Started", "stop": "Stopped", "terminate": "Terminated"}

ClientFactory = Callable[[], RunPodClient]
MonitorFactory = Callable[[RunPodClient], PodsMonitor]


def is_preset_gpu(gpu: GpuType) -> bool:
    """True for the GPUs the training presets target (H200, A100 80GB, RTX 4090)."""
    name = gpu.display_name
    return any(part in name and (memory is None or gpu.memory_in_gb == memory) for part, memory in PRESET_GPUS)


#: The board's form factor or memory kind ends a RunPod GPU name; the table leaves it to the detail line.
_FORM_FACTORS = ("PCIe", "SXM", "SXM4", "SXM5", "HBM3", "HBM3e", "NVL")


def table_gpu_name(name: str) -> str:
    """``"NVIDIA A100 80GB PCIe"`` → ``"A100 80GB"``: the pods table must fit 80 columns."""
    words = short_gpu_name(name).split()
    while len(words) > 1 and words[-1] in _FORM_FACTORS:
        words.pop()
    return " ".join(words)


def _percent_pair(row: PodSummary) -> str:
    if row.gpu_util_percent is None and row.gpu_memory_percent is None:
        return "—"

    def fmt(value: float | None) -> str:
        return "?" if value is None else f"{value:.0f}"

    return f"{fmt(row.gpu_util_percent)}/{fmt(row.gpu_memory_percent)}"


def _status_cell(row: PodSummary, idle: IdleInfo | None) -> Text:
    """The pod's state; an idle running pod shows what its idleness cost, or its auto-stop countdown."""
    if idle is not None and idle.flagged:
        if idle.countdown is not None:
            return Text(f"stop {duration(idle.countdown)}", style="bold red")
        return Text(f"idle {money(idle.idle_cost)}", style="bold yellow")
    return Text(row.status, style={"running": "green", "starting": "yellow", "stopped": "dim"}.get(row.status, ""))


def account_line(state: PodsState) -> Text:
    """Balance, spend rate, how long the balance lasts, and the spend limit."""
    account = state.account
    line = Text()
    line.append("Balance ", style="dim")
    line.append(money(account.client_balance), style="bold")
    line.append("  spending ", style="dim")
    line.append(f"{money(account.current_spend_per_hr)}/h", style="bold")
    if account.hours_left is not None:
        line.append(f"  ~{duration(account.hours_left * 3600)} left", style="dim")
    if account.spend_limit is not None:
        line.append(f"  limit {money(account.spend_limit, 0)}/h", style="dim")
    running = sum(1 for row in state.rows if row.desired_status == "RUNNING")
    line.append(f"  {running}/{len(state.rows)} running", style="dim")
    return line


def no_key_help() -> str:
    """How to give Pistachio a RunPod key, naming the secrets file; never shows a key."""
    path = config.config_dir() / config.SECRETS_FILE
    return (
        "[b]No RunPod API key[/b]\n\n"
        "Create a key in RunPod's console (Settings → API Keys), then either:\n\n"
        "  • export it before starting Pistachio:  [b]export RUNPOD_API_KEY=…[/b]\n"
        "  • or put  [b]RUNPOD_API_KEY = \"…\"[/b]  in the secrets file\n"
        "    and make it private with  [b]chmod 600[/b]:\n\n"
        f"    {path}\n\n"
        "Then press [b]r[/b] to try again."
    )


class PodsView(Vertical):
    """RunPod pods table with account header, actions, idle flags and a GPU price table.

    ``client_factory`` makes the API client (default: the configured key); raising
    ``ApiKeyMissing`` or ``ConfigError`` shows how to set the key. ``monitor_factory``
    wraps the client in a ``PodsMonitor`` (default: an idle guard from ``settings``).
    ``comfy_http`` probes each running pod's ComfyUI; None makes (and closes) its own.
    """

    DEFAULT_CSS = ""

    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("s", "start_pod", "Start"),
        Binding("x", "stop_pod", "Stop"),
        Binding("t", "terminate_pod", "Terminate"),
        Binding("c", "copy_ssh", "Copy SSH"),
        Binding("a", "add_server", "Add server"),
        Binding("p", "toggle_prices", "Prices"),
        Binding("k", "cancel_auto_stop", "Cancel auto-stop"),
        Binding("l", "pod_logs", "Logs"),
    ]

    class AddServer(Message):
        """The user asked to add a pod's ComfyUI to the servers list; the shell saves it."""

        def __init__(self, server: ServerConfig) -> None:
            super().__init__()
            self.server = server

    def __init__(self, settings: Settings, *, client_factory: ClientFactory | None = None,
                 monitor_factory: MonitorFactory | None = None, comfy_http: httpx.AsyncClient | None = None,
                 refresh_interval: float = 10.0, probe_comfy_ui: bool = True,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.settings = settings
        self._client_factory = client_factory or (lambda: RunPodClient(load_api_key()))
        #: A client from ``client_factory`` belongs to whoever made it (the app shares one).
        self._owns_client = client_factory is None
        self._monitor_factory = monitor_factory or self._default_monitor
        self._comfy_http = comfy_http
        self._owns_http = comfy_http is None
        self._probe = probe_comfy_ui
        self.refresh_interval = refresh_interval
        self.client: RunPodClient | None = None
        self.monitor: PodsMonitor | None = None
        self.state: PodsState | None = None
        #: Pod id → True (ComfyUI answers) or why not; absent while unknown.
        self.comfy_ok: dict[str, bool | str] = {}
        #: The money warnings last shown, so a refresh repeats them only when they change.
        self._warnings: list[str] = []
        self._prices_loaded = False

    def _default_monitor(self, client: RunPodClient) -> PodsMonitor:
        guard = IdleGuard(idle_minutes=self.settings.idle_minutes, auto_stop=self.settings.auto_stop_idle)
        return PodsMonitor(client, guard=guard, comfy_http=self._comfy_http)

    def compose(self) -> ComposeResult:
        yield Static("Connecting to RunPod…", id="pods-account")
        yield Static("", id="pods-nokey")
        table = FilterTable(id="pods-table", zebra_stripes=True)
        table.set_columns("Name", "GPU", "Status", "Up", "$/h", "Spent", "Use%", "Comfy")
        yield table
        prices: DataTable[object] = DataTable(id="pods-prices", cursor_type="row")
        prices.add_columns("★", "GPU", "VRAM", "On-demand", "Spot", "Clouds")
        yield prices
        yield Static("", id="pods-detail")
        yield StatusLine("", id="pods-status")

    def on_mount(self) -> None:
        self.query_one("#pods-nokey").display = False
        self.query_one("#pods-prices").display = False
        if self._comfy_http is None:
            self._comfy_http = httpx.AsyncClient(timeout=5.0)
        self._connect()

    async def on_unmount(self) -> None:
        if self.client is not None and self._owns_client:
            await self.client.aclose()
        if self._owns_http and self._comfy_http is not None:
            await self._comfy_http.aclose()

    @property
    def status(self) -> StatusLine:
        return self.query_one("#pods-status", StatusLine)

    def _connect(self) -> None:
        try:
            self.client = self._client_factory()
        except ApiKeyMissing:
            self._show_no_key(no_key_help())
            return
        except ConfigError as exc:
            self._show_no_key(f"[b]The RunPod key cannot be read[/b]\n\n{esc(exc)}")
            return
        self.monitor = self._monitor_factory(self.client)
        self.query_one("#pods-nokey").display = False
        self.query_one("#pods-table").display = True
        self.action_refresh()
        self.set_interval(self.refresh_interval, self.action_refresh)

    def _show_no_key(self, text: str) -> None:
        panel = self.query_one("#pods-nokey", Static)
        panel.update(text)
        panel.display = True
        self.query_one("#pods-table").display = False
        self.query_one("#pods-account", Static).update("RunPod: not connected")

    # -- refresh -----------------------------------------------------------------

    def action_refresh(self) -> None:
        """Fetch everything now (no-op without a key, except trying the key again)."""
        if self.monitor is None:
            self._connect()
            return
        self._refresh(self.monitor)

    @work(exclusive=True, group="pods-refresh", exit_on_error=False)
    async def _refresh(self, monitor: PodsMonitor) -> None:
        try:
            state = await monitor.refresh()
        except RunPodError as exc:
            self.status.show(exc.message, "error")
            if self.state is None:
                # Nothing has been shown yet: "Connecting…" would stay above the error for good.
                self.query_one("#pods-account", Static).update("RunPod: no answer yet (see below)")
            return
        self._show_state(state)
        self._report_guard(state)
        if self._probe and self._comfy_http is not None:
            await self._probe_comfy(state, self._comfy_http)

    async def _probe_comfy(self, state: PodsState, http: httpx.AsyncClient) -> None:
        running = [row for row in state.rows if row.status == "running"]
        answers = await asyncio.gather(*(probe_comfy(row.comfy_url, http) for row in running))
        self.comfy_ok = {row.id: answer for row, answer in zip(running, answers)}
        self._show_state(state)

    def _report_guard(self, state: PodsState) -> None:
        names = {row.id: row.name or row.id for row in state.rows}
        for action in state.actions:
            if isinstance(action, IdleFlagged):
                self.app.notify(
                    f"{names.get(action.pod_id, action.pod_id)} has been idle "
                    f"{duration(action.idle_seconds)} ({money(action.idle_cost)} spent idle)",
                    title="Idle pod", severity="warning")
            elif isinstance(action, ActivityResumed):
                self.status.show(f"{names.get(action.pod_id, action.pod_id)} is busy again", "ok")
        for pod_id in state.stopped:
            self.app.notify(f"Stopped idle pod {names.get(pod_id, pod_id)}", title="Auto-stop")
        for pod_id, why in state.stop_errors.items():
            self.status.show(f"Auto-stop of {names.get(pod_id, pod_id)} failed: {why}", "error")
        warnings = money_warnings(state.account, state.pods)
        if warnings and warnings != self._warnings:
            self.status.show(" · ".join(warnings), "warning")
        self._warnings = warnings

    def _show_state(self, state: PodsState) -> None:
        self.state = state
        self.query_one("#pods-account", Static).update(account_line(state))
        self.query_one("#pods-table", FilterTable).set_rows(
            [(row.id, self._cells(row, state.idle.get(row.id))) for row in state.rows])
        self._show_detail()

    def _cells(self, row: PodSummary, idle: IdleInfo | None) -> list[object]:
        gpu = table_gpu_name(row.gpu) or "—"
        if row.gpu_count > 1:
            gpu = f"{row.gpu_count}× {gpu}"
        probe = self.comfy_ok.get(row.id)
        comfy = Text("—", style="dim") if probe is None else (
            Text("yes", style="green") if probe is True else Text("no", style="red"))
        name = Text(row.name or row.id)
        if row.is_this_pod:
            name = Text.assemble(("▶ ", "bold"), (name.plain, "bold"))
        return [
            name,
            gpu,
            _status_cell(row, idle),
            row.uptime,
            money(row.cost_per_hr),
            money(row.spend_estimate) if row.uptime_seconds else "—",
            _percent_pair(row),
            comfy,
        ]

    # -- selection ---------------------------------------------------------------

    def selected_id(self) -> str | None:
        """The id of the pod under the cursor, None when no pod is shown."""
        return self.query_one("#pods-table", FilterTable).selected_key

    def selected(self) -> PodSummary | None:
        """The row under the cursor."""
        pod_id = self.selected_id()
        if self.state is None or pod_id is None:
            return None
        return next((r for r in self.state.rows if r.id == pod_id), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "pods-table":
            self._show_detail()

    def _show_detail(self) -> None:
        row = self.selected()
        detail = self.query_one("#pods-detail", Static)
        if row is None:
            if self.state is None:
                detail.update("")
            else:
                detail.update("No pod matches the filter (Esc clears it)." if self.state.rows
                              else "No pods in this account.")
            return
        text = Text()
        text.append(row.name or row.id, style="bold")
        text.append(f" ({row.id})" + (" — this pod" if row.is_this_pod else ""), style="dim")
        if row.gpu:
            count = f"{row.gpu_count}× " if row.gpu_count > 1 else ""
            text.append(f"  {count}{short_gpu_name(row.gpu)}", style="dim")
        text.append(f"\nComfyUI {row.comfy_url}")
        probe = self.comfy_ok.get(row.id)
        if isinstance(probe, str):
            text.append(f" — {probe}", style="dim")
        text.append(f"\nSSH {row.ssh}" if row.ssh else "\nSSH — (pod not running)")
        idle = self.state.idle.get(row.id) if self.state is not None else None
        if idle is not None and idle.flagged:
            text.append(f"\nIdle {duration(idle.idle_seconds)}, {money(idle.idle_cost)} spent idle",
                        style="bold yellow")
            if idle.countdown is not None:
                text.append(f" — auto-stop in {duration(idle.countdown)} (k cancels)", style="bold red")
        detail.update(text)

    def _need_selection(self) -> PodSummary | None:
        row = self.selected()
        if row is None or self.client is None:
            self.status.show("No pod selected", "warning")
            return None
        return row

    # -- actions -----------------------------------------------------------------

    def action_start_pod(self) -> None:
        row = self._need_selection()
        if row is None:
            return
        if row.desired_status == "RUNNING":
            self.status.show(f"{row.name} is already running", "warning")
            return
        self._mutate(self.client, row, "start")

    def action_stop_pod(self) -> None:
        row = self._need_selection()
        if row is None:
            return
        if row.desired_status != "RUNNING":
            self.status.show(f"{row.name} is not running", "warning")
            return
        label = row.name or row.id
        explanation = (f"{label} ({row.id}) stops running its GPU at {money(row.cost_per_hr)}/h. Its volume "
                       "is kept (storage is still billed); whatever is only on its container disk is lost. "
                       "s starts it again, if a GPU is free on its machine then.")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._mutate(self.client, row, "stop")
            else:
                self.status.show(f"{label} keeps running")

        self.app.push_screen(YesNo(esc(f"Stop {label}?"), esc(explanation)), confirmed)

    def action_terminate_pod(self) -> None:
        row = self._need_selection()
        if row is None:
            return
        expected = row.name or row.id
        explanation = (
            f"Terminating deletes {esc(expected)} ({esc(row.id)}) and its volume for good.\n"
            f"Type the pod's name, [b]{esc(expected)}[/b], to confirm."
        )

        def confirmed(typed: str | None) -> None:
            if typed is None:
                self.status.show("Terminate cancelled")
            elif typed != expected:
                self.status.show(f"Not terminated: the name typed was not {expected!r}", "error")
            else:
                self._mutate(self.client, row, "terminate", typed)

        self.app.push_screen(TypeToConfirm(esc(f"Terminate {expected}?"), explanation, "the pod's name"), confirmed)

    @work(group="pods-action", exit_on_error=False)
    async def _mutate(self, client: RunPodClient, row: PodSummary, what: str, typed: str = "") -> None:
        label = row.name or row.id
        self.status.show(f"{_DOING[what]} {label}…")
        try:
            if what == "start":
                await client.start_pod(row.id, row.gpu_count or 1)
            elif what == "stop":
                await client.stop_pod(row.id)
            else:
                await client.terminate_pod(row.id, confirm_name=typed)
        except RunPodError as exc:
            self.status.show(exc.message, "error")
            return
        self.status.show(f"{_DONE[what]} {label}", "ok")
        self.action_refresh()

    def action_copy_ssh(self) -> None:
        row = self._need_selection()
        if row is None:
            return
        if not row.ssh:
            self.status.show(f"{row.name} is not running: no SSH command", "warning")
            return
        self.app.copy_to_clipboard(row.ssh)
        self.status.show(f"Copied: {row.ssh}", "ok")

    def action_add_server(self) -> None:
        row = self._need_selection()
        if row is None:
            return
        server = comfy_server(row)
        probe = self.comfy_ok.get(row.id)
        self.post_message(self.AddServer(server))
        note = "" if probe is True else " (ComfyUI does not answer there yet)"
        self.status.show(f"Added server {server.name}: {server.url}{note}", "ok" if not note else "warning")

    def action_cancel_auto_stop(self) -> None:
        row = self._need_selection()
        if row is None or self.monitor is None:
            return
        if self.monitor.guard.cancel(row.id):
            self.status.show(f"Auto-stop of {row.name} cancelled until it is busy again", "ok")
            self.action_refresh()
        else:
            self.status.show(f"No auto-stop countdown for {row.name}", "warning")

    def action_pod_logs(self) -> None:
        row = self._need_selection()
        if row is not None and self.client is not None:
            self._show_logs(self.client, row)

    @work(exclusive=True, group="pods-logs", exit_on_error=False)
    async def _show_logs(self, client: RunPodClient, row: PodSummary) -> None:
        label = row.name or row.id
        self.status.show(f"Fetching the logs of {label}…")
        try:
            lines = await client.pod_logs(row.id, tail=300)
        except RunPodError as exc:
            self.status.show(exc.message, "error")
            return
        self.status.show("")
        text = "\n".join(f"{entry.ts} {entry.source:<9} {entry.line}" for entry in lines) or "(no log lines yet)"
        self.app.push_screen(TextModal(f"Logs of {label} ({row.id})", text))

    def action_toggle_prices(self) -> None:
        prices = self.query_one("#pods-prices", DataTable)
        prices.display = not prices.display
        if prices.display:
            prices.focus()
            if not self._prices_loaded and self.client is not None:
                self._load_prices(self.client)
        else:
            self.query_one("#pods-table", FilterTable).focus()

    @work(exclusive=True, group="pods-prices", exit_on_error=False)
    async def _load_prices(self, client: RunPodClient) -> None:
        self.status.show("Fetching GPU prices…")
        try:
            types = await client.gpu_types()
        except RunPodError as exc:
            self.status.show(exc.message, "error")
            return
        self._prices_loaded = True
        self.show_prices(types)
        self.status.show(f"{len(types)} GPU types; ★ = training presets", "ok")

    def show_prices(self, types: list[GpuType]) -> None:
        """Fill the price table; preset GPUs first and in bold."""
        table = self.query_one("#pods-prices", DataTable)
        table.clear()
        ordered = sorted(types, key=lambda t: not is_preset_gpu(t))
        for gpu in ordered:
            preset = is_preset_gpu(gpu)
            style = "bold" if preset else ""
            clouds = "/".join(c for c, on in (("secure", gpu.secure_cloud), ("community", gpu.community_cloud)) if on)
            table.add_row(
                Text("★", style="bold yellow") if preset else "",
                Text(gpu.display_name, style=style),
                f"{gpu.memory_in_gb} GB",
                Text(f"{money(gpu.on_demand_price)}/h" if gpu.on_demand_price else "unavailable", style=style),
                f"{money(gpu.spot_price)}/h" if gpu.spot_price else "—",
                clouds or "—",
                key=gpu.id,
            )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.status.show(f"Unexpected error: {type(error).__name__}: {error}", "error")
