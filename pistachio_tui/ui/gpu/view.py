"""The GPU view: a device table, the chosen device's history graphs and its processes, like nvitop.

Everything drawn comes from :class:`~pistachio_tui.gpu.hub.GpuHub` snapshots:
the view samples the hub on a steady clock tick and redraws. It opens no
connection of its own; the screen hands it a hub fed by the app's sessions.

Graphs use fixed scales (0-100 % for VRAM and utilisation, 0-100 °C, 0 to the
board's power limit), so a small change looks small. ``f`` asks the chosen
server to free memory (a message up to the screen), ``z`` forgets the peaks.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from pistachio_tui.format import gib
from pistachio_tui.gpu.hub import GpuHub, HubSnapshot, ServerState
from pistachio_tui.gpu.nvml import ProcessUsage
from pistachio_tui.gpu.source import GpuSource, Level
from pistachio_tui.ui.gpu.graph import WAITING, GraphData, HistoryGraph
from pistachio_tui.ui.widgets.status_line import StatusLine

COMMANDS: list[tuple[str, str, str]] = [
    ("GPU: free server memory", "Ask the chosen ComfyUI server to unload models and free VRAM", "free_memory"),
    ("GPU: reset peaks", "Forget the peak VRAM marks of every device", "reset_peaks"),
]

METRIC_NAMES = {"vram": "memory", "util": "utilisation", "temperature": "temperature", "power": "power"}
#: "Memory": a GPU's is its VRAM, a CPU server's is its RAM (the graph title says which).
DEVICE_COLUMNS = ("Device", "Memory", "Use", "Util", "Temp", "Power", "Peak")
_LEVEL_STYLE = {Level.OK: "green", Level.WARN: "bold yellow", Level.CRITICAL: "bold red"}
#: What a ComfyUI server cannot tell (its /system_stats has memory only).
NOT_FROM_SERVER = "not reported by ComfyUI's /system_stats"


def _figure(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:.0f}{unit}"


def device_cells(source: GpuSource) -> tuple[Text, ...]:
    """One device table row: name, VRAM used/total, use %, utilisation, temperature, power, peak."""
    fraction = source.memory_fraction
    level = _LEVEL_STYLE[source.level]
    name = Text(source.label, style="" if source.up else "dim")
    if not source.up:
        name.append(" (down)", style="red")
    power = "—"
    if source.power_w is not None:
        power = f"{source.power_w:.0f}/{source.power_limit_w:.0f}W" if source.power_limit_w else f"{source.power_w:.0f}W"
    peak = source.series["vram"].peak() if "vram" in source.series else None
    return (
        name,
        Text(f"{gib(source.memory_used)}/{gib(source.memory_total)}"),
        Text("—" if fraction is None else f"{fraction:.0%}", style=level),
        Text(_figure(source.util_percent, "%")),
        Text(_figure(source.temperature_c, "°C")),
        Text(power),
        Text(gib(peak), style="yellow"),
    )


def server_down_cells(server: ServerState) -> tuple[Text, ...]:
    """A server that has not reported a device yet: its name and why it is not answering."""
    return (Text(f"{server.name} (down)", style="red"), Text("—"), Text("—"), Text("—"), Text("—"), Text("—"),
            Text("—"))


def graphs_for(source: GpuSource) -> dict[str, GraphData]:
    """The four graphs of a device, each on its fixed scale; a metric the device lacks says why."""
    missing = NOT_FROM_SERVER if source.kind == "server" else "not reported by this board"

    def data(metric: str, top: float | None, labels: tuple[str, str, str]) -> GraphData:
        series = source.series.get(metric)
        if series is None or not len(series) or not top:
            empty = WAITING if source.updated_at is None else missing
            return GraphData(top_label=labels[0], mid_label=labels[1], zero_label=labels[2], empty=empty)
        return GraphData(tuple(series.values()), tuple(series.times()), top, *labels)

    percent = ("100%", "50%", "0%")
    limit = source.power_limit_w or (source.series["power"].peak() if "power" in source.series else None)
    watts = (f"{limit:.0f}W", f"{limit / 2:.0f}W", "0W") if limit else ("", "", "0W")
    return {
        "vram": data("vram_percent", 100.0, percent),
        "util": data("util", 100.0, percent),
        "temperature": data("temperature", 100.0, ("100°", "50°", "0°")),
        "power": data("power", limit, watts),
    }


def graph_titles(source: GpuSource) -> dict[str, str]:
    fraction = source.memory_fraction
    return {
        "vram": f"{source.memory_name} {'' if fraction is None else f'{fraction:.0%} '}"
                f"({gib(source.memory_used)} of {gib(source.memory_total)})",
        "util": f"Utilisation {_figure(source.util_percent, '%')}",
        "temperature": f"Temperature {_figure(source.temperature_c, '°C')}",
        "power": f"Power {_figure(source.power_w, 'W')}",
    }


def detail_text(source: GpuSource) -> Text:
    """The chosen device in one line: peak (and the prompt running then), what runs now, or why it is down."""
    text = Text(source.label, style="bold")
    if not source.up:
        text.append(f"  {source.reason}", style="red")
        return text
    if source.peak_percent is not None:
        peak = source.series["vram"].peak() if "vram" in source.series else None
        text.append(f"  peak {gib(peak)} ({source.peak_percent:.0f}%)", style="yellow")
        if source.peak_prompt:
            text.append(f" during prompt {source.peak_prompt[:8]}", style="yellow")
    if source.running_prompt:
        text.append(f"  running {source.running_prompt[:8]}", style="cyan")
    return text


def server_name(key: str) -> str | None:
    """The server a device table row belongs to: ``server:<name>:<index>`` or ``down:<name>``; None if local."""
    if key.startswith("down:"):
        return key.removeprefix("down:")
    if key.startswith("server:"):
        return key.removeprefix("server:").rsplit(":", 1)[0]
    return None


def ranked_processes(processes: tuple[ProcessUsage, ...]) -> list[ProcessUsage]:
    """Biggest memory holder first: the answer to "why did it run out"."""
    return sorted(processes, key=lambda p: p.used_bytes or 0, reverse=True)


class GpuView(Vertical):
    """Devices of this machine and of every server the hub follows, with graphs and processes."""

    BINDINGS = [
        Binding("f", "free_memory", "Free memory"),
        Binding("z", "reset_peaks", "Reset peaks"),
    ]

    class FreeMemory(Message):
        """The user asked a server to unload its models; the screen owns the session that can."""

        def __init__(self, server: str) -> None:
            super().__init__()
            self.server = server

    #: The key of the device whose graphs and processes are shown.
    chosen: reactive[str | None] = reactive(None, init=False)

    def __init__(self, hub: GpuHub, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.hub = hub
        self.snapshot: HubSnapshot | None = None
        #: Hub samples drawn so far.
        self.samples = 0
        #: The device table's row keys, in order (a device ``key``, or ``down:<server>``).
        self.row_keys: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="gpu-local")
        table: DataTable = DataTable(id="gpu-devices", cursor_type="row")
        table.add_columns(*DEVICE_COLUMNS)
        yield table
        yield Static("", id="gpu-detail")
        with Grid(id="gpu-graphs"):
            for metric in ("vram", "util", "temperature", "power"):
                yield HistoryGraph(id=f"gpu-graph-{metric}", classes=f"gpu-graph -{metric}")
        processes: DataTable = DataTable(id="gpu-procs", cursor_type="none")
        processes.add_columns("PID", "Process", "GPU memory")
        yield processes
        yield StatusLine("", id="gpu-status")

    @property
    def status(self) -> StatusLine:
        return self.query_one("#gpu-status", StatusLine)

    def on_mount(self) -> None:
        self.query_one("#gpu-local").display = False
        self._sample()

    # -- sampling ----------------------------------------------------------------

    @work(exclusive=True, group="gpu-sample", exit_on_error=False)
    async def _sample(self) -> None:
        interval = self.hub.interval
        loop = asyncio.get_running_loop()
        while True:
            await self.hub.sample_once()
            self.samples += 1
            self.show(self.hub.snapshot())
            # Every tick lands on the same clock boundary, so a second's changes paint in one frame.
            await asyncio.sleep(interval - loop.time() % interval)

    def show(self, snapshot: HubSnapshot) -> None:
        """Draw a hub snapshot: the notice, the device table, the chosen device."""
        self.snapshot = snapshot
        notice = self.query_one("#gpu-local", Static)
        notice.display = snapshot.local_unavailable is not None
        if snapshot.local_unavailable is not None:
            notice.update(Text(snapshot.local_unavailable, style="bold"))
        self._fill_devices(snapshot)
        if not snapshot.sources and not snapshot.servers and snapshot.local_unavailable is not None:
            self.status.show("No ComfyUI server configured: add one on the Servers screen", "warning")
        self._show_chosen()

    def _fill_devices(self, snapshot: HubSnapshot) -> None:
        table = self.query_one("#gpu-devices", DataTable)
        rows: dict[str, tuple[Text, ...]] = {s.key: device_cells(s) for s in snapshot.sources}
        with_devices = {server_name(s.key) for s in snapshot.sources}
        for server in snapshot.servers:
            if server.name not in with_devices:
                rows[f"down:{server.name}"] = server_down_cells(server)
        if list(rows) != self.row_keys:
            with self.prevent(DataTable.RowHighlighted):
                table.clear()
                for key, cells in rows.items():
                    table.add_row(*cells, key=key)
                if self.chosen in rows:
                    table.move_cursor(row=list(rows).index(self.chosen))
            self.row_keys = list(rows)
        else:
            for key, cells in rows.items():
                for column, cell in zip(table.columns, cells):
                    if table.get_cell(key, column) != cell:
                        table.update_cell(key, column, cell)
        if self.chosen not in rows:
            self.chosen = next(iter(rows), None)

    @on(DataTable.RowHighlighted, "#gpu-devices")
    def _row_chosen(self, event: DataTable.RowHighlighted) -> None:
        self.chosen = event.row_key.value

    def watch_chosen(self) -> None:
        self._show_chosen()

    def _source(self) -> GpuSource | None:
        return self.snapshot.get(self.chosen) if self.snapshot and self.chosen else None

    def _server_of_choice(self) -> str | None:
        return server_name(self.chosen) if self.chosen else None

    def _show_chosen(self) -> None:
        source = self._source()
        detail = self.query_one("#gpu-detail", Static)
        graphs = self.query_one("#gpu-graphs")
        processes = self.query_one("#gpu-procs", DataTable)
        if source is None:
            server = next((s for s in self.snapshot.servers if s.name == self._server_of_choice()), None) \
                if self.snapshot else None
            detail.update(Text(f"{server.name}: {server.reason}", style="red") if server and server.reason
                          else Text("Waiting for the first sample…", style="dim"))
            graphs.display = processes.display = False
            return
        graphs.display = True
        graphs.set_class(source.level is Level.WARN, "-warn")
        graphs.set_class(source.level is Level.CRITICAL, "-critical")
        titles = graph_titles(source)
        text = detail_text(source)
        missing: dict[str, list[str]] = {}
        for metric, data in graphs_for(source).items():
            graph = self.query_one(f"#gpu-graph-{metric}", HistoryGraph)
            # A metric the device never reports gets no graph: the others take its room.
            graph.display = bool(data.values) or data.empty == WAITING
            graph.title, graph.data = titles[metric], data
            if not graph.display:
                missing.setdefault(data.empty, []).append(METRIC_NAMES[metric])
        for why, metrics in missing.items():
            text.append(f"\n{', '.join(metrics)}: {why}", style="dim")
        detail.update(text)
        shown = 4 - sum(len(metrics) for metrics in missing.values())
        # Side by side where there is room for two readable graphs, else one under the other.
        graphs.styles.grid_size_columns = 2 if shown > 1 and self.size.width >= 70 else 1
        processes.display = source.kind == "local"
        if processes.display:
            self._fill_processes(processes, source.processes)

    @staticmethod
    def _fill_processes(table: DataTable, processes: tuple[ProcessUsage, ...]) -> None:
        rows = [(str(p.pid), p.name or "(hidden)", gib(p.used_bytes)) for p in ranked_processes(processes)]
        if not rows:
            rows = [("", "no process holds memory on this GPU", "")]
        current = [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]
        if current != rows:
            table.clear()
            table.add_rows(rows)

    # -- actions -----------------------------------------------------------------

    def action_free_memory(self) -> None:
        server = self._server_of_choice()
        if server is None:
            self.status.show("Free memory works on a ComfyUI server's device: pick one in the table", "warning")
            return
        self.post_message(self.FreeMemory(server))

    def action_reset_peaks(self) -> None:
        self.hub.reset_peaks()
        if self.snapshot is not None:
            self.show(self.snapshot)
        self.status.show("Peaks reset; they fill again from the next sample")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.status.show(f"Unexpected error: {type(error).__name__}: {error}", "error")
