"""One server's devices: name, VRAM used/total and a sparkline of recent use."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from pistachio_tui.comfy.session import ServerSession
from pistachio_tui.ui.format import gib, state_text


def device_lines(session: ServerSession) -> str:
    stats = session.stats
    if stats is None or not stats.devices:
        return "no device information yet" if session.state != "down" else session.reason
    lines = []
    for device in stats.devices:
        used = device.vram_total - device.vram_free
        lines.append(f"{device.name}\nVRAM {gib(used)} / {gib(device.vram_total)}  "
                     f"torch free {gib(device.torch_vram_free)}")
    lines.append(f"RAM {gib(stats.ram_total - stats.ram_free)} / {gib(stats.ram_total)}")
    return "\n".join(lines)


class VramPanel(Vertical):
    """Re-rendered with :meth:`show` from the session."""

    DEFAULT_CSS = """
    VramPanel { height: auto; border: round $primary; padding: 0 1; }
    VramPanel Sparkline { height: 3; }
    """

    def __init__(self, session: ServerSession) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        yield Static(classes="devices")
        yield Sparkline([], summary_function=max)

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        if not self.children:
            return  # not composed yet: on_mount shows it
        self.border_title = f"{self.session.name} — {state_text(self.session.state).plain}"
        self.query_one(".devices", Static).update(device_lines(self.session))
        self.query_one(Sparkline).data = list(self.session.vram_used) or [0.0]
