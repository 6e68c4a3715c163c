"""The GPU view: VRAM, utilisation, temperature and power over time, per device.

Two kinds of source feed it, each polled in its own worker every
``settings.gpu_interval`` seconds so a slow one never holds up the others:

- this machine's GPUs, through ``local_source`` — a blocking callable (it is run
  in a thread) returning one ``GpuReading`` per GPU, or raising ``NoGpu`` with
  the reason when there is none (no NVIDIA driver, no NVML);
- every configured ComfyUI server, through ``GET /system_stats`` (VRAM per
  torch device) and ``GET /queue`` (which prompt was running).

Each device gets a panel: VRAM use over time (a fixed number of samples, drawn
against the device's total),
current figures, the peak and the prompt that was running when it was reached,
and a warning colour near the limit. ``f`` frees a server's memory (``POST /free``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import ComfyError
from pistachio_tui.config import ServerConfig, Settings
from pistachio_tui.gpu.nvml import NvmlReader, NvmlUnavailable, ProcessUsage
from pistachio_tui.gpu.source import CRITICAL_AT, WARN_AT
from pistachio_tui.ui.widgets.status_line import StatusLine

COMMANDS: list[tuple[str, str, str]] = [
    ("GPU: free server memory", "Ask the selected ComfyUI server to unload models and free VRAM", "free_memory"),
    ("GPU: reset peaks", "Forget the peak VRAM marks of every device", "reset_peaks"),
]

#: Samples kept per device (the history's width at most).
HISTORY = 120


class NoGpu(Exception):
    """This machine has no GPU the local source can read; the message says why."""


@dataclass(frozen=True)
class GpuReading:
    """One sample of one device. Unknown figures are None; memory is in bytes."""

    key: str
    name: str
    used: int
    total: int
    util_percent: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    #: Processes holding memory on the device (local GPUs only: servers do not report them).
    processes: tuple[ProcessUsage, ...] = ()


LocalSource = Callable[[], list[GpuReading]]
ClientFactory = Callable[[ServerConfig], ComfyClient]
#: The prompt a server runs now, by server name, when the app already follows it (saves a /queue poll).
RunningPrompt = Callable[[str], str | None]


def nvml_source(reader: NvmlReader) -> LocalSource:
    """This machine's GPUs read through NVML; ``NoGpu`` with NVML's own reason when it cannot be used."""
    def read() -> list[GpuReading]:
        try:
            samples = reader.read()
        except NvmlUnavailable as exc:
            raise NoGpu(exc.reason) from exc
        return [GpuReading(f"local:{s.index}", f"{s.name or 'GPU'} (#{s.index})", s.memory_used or 0,
                           s.memory_total or 0, s.util_gpu, s.temperature_c, s.power_w, s.power_limit_w,
                           s.processes)
                for s in samples]
    return read


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 1024 ** 3:.1f}G"


@dataclass
class DeviceHistory:
    """Bounded history of one device plus its peak and the prompt running at the peak."""

    used: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    peak: int = 0
    peak_prompt: str | None = None

    def add(self, reading: GpuReading, running: str | None) -> None:
        self.used.append(reading.used / 1024 ** 3)
        if reading.used > self.peak:
            self.peak, self.peak_prompt = reading.used, running


def figures(reading: GpuReading, history: DeviceHistory, running: str | None) -> Text:
    """The figures line of a panel: VRAM, utilisation, temperature, power, peak, running prompt."""
    fraction = reading.used / reading.total if reading.total else 0.0
    text = Text()
    text.append(f"VRAM {_gib(reading.used)}/{_gib(reading.total)} ({fraction:.0%})", style="bold")
    if reading.util_percent is not None:
        text.append(f"  util {reading.util_percent:.0f}%")
    if reading.temperature_c is not None:
        text.append(f"  {reading.temperature_c:.0f}°C")
    if reading.power_w is not None:
        limit = f"/{reading.power_limit_w:.0f}" if reading.power_limit_w else ""
        text.append(f"  {reading.power_w:.0f}{limit}W")
    text.append(f"\npeak {_gib(history.peak)}", style="yellow")
    if history.peak_prompt:
        text.append(f" during prompt {history.peak_prompt[:8]}", style="yellow")
    if running:
        text.append(f"  running {running[:8]}", style="cyan")
    if reading.processes:
        text.append(f"\n{process_line(reading.processes)}", style="dim")
    return text


#: Processes named on a panel; the rest are counted.
TOP_PROCESSES = 3


def process_line(processes: tuple[ProcessUsage, ...]) -> str:
    """The biggest memory holders first: who is using the GPU (the answer to "why did it run out")."""
    ranked = sorted(processes, key=lambda p: p.used_bytes or 0, reverse=True)
    shown = [f"{p.name or f'pid {p.pid}'} {_gib(p.used_bytes) if p.used_bytes is not None else '?'}"
             for p in ranked[:TOP_PROCESSES]]
    more = len(ranked) - TOP_PROCESSES
    return "processes: " + " · ".join(shown) + (f" · +{more} more" if more > 0 else "")


_BLOCKS = " ▁▂▃▄▅▆▇█"


def bars(values: list[float], top: float, width: int) -> str:
    """The last ``width`` values as block characters on an absolute 0…``top`` scale."""
    if top <= 0 or width <= 0:
        return ""
    last = len(_BLOCKS) - 1
    # Any use at all gets at least the lowest block, so a nearly idle device is not blank.
    return "".join(_BLOCKS[min(last, max(1 if v > 0 else 0, round(v / top * last)))] for v in values[-width:])


class VramHistory(Widget):
    """VRAM use over time, one column per sample, full height = the device's total memory."""

    def __init__(self, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.values: list[float] = []
        self.top = 0.0

    def set_data(self, values: list[float], top: float) -> None:
        if (values, top) != (self.values, self.top):
            self.values, self.top = values, top
            self.refresh()

    def render(self) -> str:
        return bars(self.values, self.top, self.size.width)


class DevicePanel(Vertical, can_focus=True):
    """One device: title, VRAM sparkline, figures. Focus it to act on its server."""

    def __init__(self, key: str, server: ServerConfig | None, title: str) -> None:
        super().__init__(classes="gpu-panel")
        self.key = key
        #: The ComfyUI server the device belongs to; None for a GPU of this machine.
        self.server = server
        self._title = title
        #: What each Static shows now, by selector.
        self._shown: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static(self._title, classes="gpu-title")
        yield VramHistory(classes="gpu-spark")
        yield Static("waiting for the first sample…", classes="gpu-figures")

    def show(self, reading: GpuReading, history: DeviceHistory, running: str | None) -> None:
        """Draw a new sample."""
        fraction = reading.used / reading.total if reading.total else 0.0
        self.set_class(WARN_AT <= fraction < CRITICAL_AT, "-warn")
        self.set_class(fraction >= CRITICAL_AT, "-critical")
        self.set_class(False, "-down")
        self._update(".gpu-title", Text(reading.name, style="bold"))
        self.query_one(VramHistory).set_data(list(history.used), reading.total / 1024 ** 3)
        self._update(".gpu-figures", figures(reading, history, running))

    def show_error(self, message: str) -> None:
        """The source cannot be read right now."""
        self.set_class(True, "-down")
        self._update(".gpu-figures", Text(message, style="red"))

    def _update(self, selector: str, content: Text) -> None:
        # Each Static update lays the whole screen out again; an idle GPU's figures rarely change.
        if self._shown.get(selector) != content.markup:
            self._shown[selector] = content.markup
            self.query_one(selector, Static).update(content)


class GpuView(Vertical):
    """Per-device panels for local GPUs and each configured ComfyUI server.

    ``local_source`` reads this machine's GPUs (None: not monitored here);
    ``client_factory`` makes one ``ComfyClient`` per server (closed on unmount).
    """

    DEFAULT_CSS = ""

    BINDINGS = [
        Binding("f", "free_memory", "Free memory"),
        Binding("z", "reset_peaks", "Reset peaks"),
    ]

    def __init__(self, settings: Settings, *, local_source: LocalSource | None = None,
                 client_factory: ClientFactory | None = None, running: RunningPrompt | None = None,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.settings = settings
        self._local = local_source
        self._running_prompt = running
        self._client_factory = client_factory or (
            lambda server: ComfyClient(server.url, headers=server.headers, timeout=5.0))
        self.clients: dict[str, ComfyClient] = {}
        self.history: dict[str, DeviceHistory] = {}
        self.panels: dict[str, DevicePanel] = {}
        self.samples = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="gpu-local")
        yield VerticalScroll(id="gpu-panels")
        yield StatusLine("", id="gpu-status")

    @property
    def status(self) -> StatusLine:
        return self.query_one("#gpu-status", StatusLine)

    async def on_mount(self) -> None:
        notice = self.query_one("#gpu-local", Static)
        if self._local is None:
            notice.update("GPUs of this machine are not monitored here.")
        else:
            notice.display = False
            self._watch_local(self._local)
        for server in self.settings.servers:
            self.clients[server.name] = self._client_factory(server)
            await self._panel(server.name, server, f"{server.name} — {server.url}")
            self._watch_server(server)
        if self._local is None and not self.settings.servers:
            self.status.show("No ComfyUI server configured: add one on the Servers screen", "warning")

    async def on_unmount(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def _panel(self, key: str, server: ServerConfig | None, title: str) -> DevicePanel:
        panel = self.panels.get(key)
        if panel is None:
            panel = DevicePanel(key, server, title)
            self.panels[key] = panel
            await self.query_one("#gpu-panels").mount(panel)
        return panel

    async def _drop_panel(self, key: str) -> None:
        panel = self.panels.pop(key, None)
        if panel is not None:
            await panel.remove()

    async def _draw(self, reading: GpuReading, server: ServerConfig | None, running: str | None) -> None:
        history = self.history.setdefault(reading.key, DeviceHistory())
        history.add(reading, running)
        panel = await self._panel(reading.key, server, reading.name)
        panel.show(reading, history, running)

    # -- sources -----------------------------------------------------------------

    async def _next_tick(self) -> None:
        # Every source wakes on the same clock tick, so their panels change in one frame, not one each.
        interval = self.settings.gpu_interval
        await asyncio.sleep(interval - asyncio.get_running_loop().time() % interval)

    @work(group="gpu-local", exit_on_error=False)
    async def _watch_local(self, source: LocalSource) -> None:
        while True:
            try:
                readings = await asyncio.to_thread(source)
            except NoGpu as exc:
                notice = self.query_one("#gpu-local", Static)
                notice.update(Text(str(exc), style="bold"))
                notice.display = True
                return
            for reading in readings:
                await self._draw(reading, None, None)
            self.samples += 1
            await self._next_tick()

    @work(group="gpu-servers", exit_on_error=False)
    async def _watch_server(self, server: ServerConfig) -> None:
        client = self.clients[server.name]
        while True:
            try:
                stats, running = await asyncio.gather(client.system_stats(), self._running_on(server, client))
            except ComfyError as exc:
                if server.name not in self.panels:
                    await self._panel(server.name, server, f"{server.name} — {server.url}")
                self.panels[server.name].show_error(exc.message)
            else:
                await self._drop_panel(server.name)
                for device in stats.devices:
                    reading = GpuReading(
                        key=f"{server.name}:{device.name}", name=f"{server.name} · {device.name}",
                        used=max(device.vram_total - device.vram_free, 0), total=device.vram_total)
                    await self._draw(reading, server, running)
            self.samples += 1
            await self._next_tick()

    async def _running_on(self, server: ServerConfig, client: ComfyClient) -> str | None:
        if self._running_prompt is not None:
            return self._running_prompt(server.name)
        queue = await client.queue()
        return queue.running[0].prompt_id if queue.running else None

    # -- actions -----------------------------------------------------------------

    def _focused_panel(self) -> DevicePanel | None:
        focused = self.app.focused
        if isinstance(focused, DevicePanel):
            return focused
        return next(iter(self.panels.values()), None)

    def action_free_memory(self) -> None:
        panel = self._focused_panel()
        if panel is None or panel.server is None:
            self.status.show("Free memory works on a ComfyUI server's panel", "warning")
            return
        self._free(panel.server)

    @work(group="gpu-free", exit_on_error=False)
    async def _free(self, server: ServerConfig) -> None:
        self.status.show(f"Asking {server.name} to unload models and free memory…")
        try:
            await self.clients[server.name].free()
        except ComfyError as exc:
            self.status.show(exc.message, "error")
            return
        self.status.show(f"{server.name} unloaded its models and freed cached memory", "ok")

    def action_reset_peaks(self) -> None:
        for history in self.history.values():
            history.peak, history.peak_prompt = 0, None
        self.status.show("Peaks reset; they fill again from the next sample")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.status.show(f"Unexpected error: {type(error).__name__}: {error}", "error")
