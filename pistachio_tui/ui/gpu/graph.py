"""History graphs on a fixed scale: a one-line bar strip and a framed graph with a y-scale and a time axis.

Every graph here is drawn against an absolute top (100 %, the device's memory,
its power limit), never against the largest value shown: 5 % → 6 % must look
like a sliver, not a full bar.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from pistachio_tui.ui.format import duration

_BLOCKS = " ▁▂▃▄▅▆▇█"
WAITING = "waiting for samples…"
_STEPS = len(_BLOCKS) - 1


def _eighths(value: float, top: float, rows: int) -> int:
    """How many eighths of a cell of a ``rows``-high column ``value`` fills on a 0…``top`` scale."""
    share = min(max(value / top, 0.0), 1.0)
    # Any use at all gets the lowest block, so a nearly idle device is not drawn blank.
    return max(1 if value > 0 else 0, round(share * rows * _STEPS))


def bars(values: list[float], top: float, width: int) -> str:
    """The last ``width`` values as one row of block characters on an absolute 0…``top`` scale."""
    if top <= 0 or width <= 0:
        return ""
    return "".join(_BLOCKS[_eighths(v, top, 1)] for v in values[-width:])


def plot_rows(values: list[float], top: float, width: int, height: int) -> list[str]:
    """The last ``width`` values as ``height`` rows of blocks (top row first), right-aligned, 0…``top``."""
    if top <= 0 or width <= 0 or height <= 0:
        return [" " * max(width, 0)] * max(height, 0)
    columns = [_eighths(v, top, height) for v in values[-width:]]
    pad = " " * (width - len(columns))
    rows = []
    for row in range(height - 1, -1, -1):
        floor = row * _STEPS
        rows.append(pad + "".join(_BLOCKS[min(_STEPS, max(0, filled - floor))] for filled in columns))
    return rows


def time_axis(span: float | None, width: int) -> str:
    """``-2m00s ─── now`` across ``width`` columns; ``span`` is how far back the left edge is."""
    left = f"-{duration(span)}" if span else ""
    right = "now"
    fill = width - len(left) - len(right) - 2
    if fill < 1:
        return right.rjust(width)[:width]
    return f"{left} {'─' * fill} {right}"


class FixedSparkline(Widget):
    """One row of blocks, one per sample, newest on the right; full height = ``top`` (not the largest value)."""

    DEFAULT_CSS = """
    FixedSparkline { height: 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.values: list[float] = []
        self.top = 1.0

    def set_data(self, values: list[float], top: float) -> None:
        """Draw ``values`` on a 0…``top`` scale (redrawn only when something changed)."""
        if (values, top) != (self.values, self.top):
            self.values, self.top = values, top
            self.refresh()

    def render(self) -> str:
        return bars(self.values, self.top, self.size.width)


@dataclass(frozen=True)
class GraphData:
    """What a graph draws: values oldest first with their times, the scale's top and its labels."""

    values: tuple[float, ...] = ()
    times: tuple[float, ...] = ()
    top: float = 100.0
    top_label: str = "100%"
    mid_label: str = "50%"
    zero_label: str = "0%"
    #: Shown instead of the plot when there is nothing to draw (e.g. "not reported by ComfyUI").
    empty: str = WAITING


class HistoryGraph(Widget):
    """A titled graph: y-scale on the left, one column per sample, a time axis below.

    ``data`` is reactive: assigning a different :class:`GraphData` redraws it,
    an equal one costs nothing (an idle GPU's graph rarely changes).
    """

    DEFAULT_CSS = """
    HistoryGraph { height: 1fr; min-height: 4; }
    HistoryGraph > .history-graph--title { text-style: bold; }
    HistoryGraph > .history-graph--axis { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"history-graph--title", "history-graph--axis"}

    data: reactive[GraphData] = reactive(GraphData, layout=False)
    title: reactive[str] = reactive("")

    def __init__(self, title: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.set_reactive(HistoryGraph.title, title)

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        title_style = self.get_component_rich_style("history-graph--title")
        axis_style = self.get_component_rich_style("history-graph--axis")
        data = self.data
        out = Text(no_wrap=True, overflow="crop")
        out.append(self.title[:width], style=title_style)
        plot_height = height - 2
        if plot_height < 1:
            return out
        labels = (data.top_label, data.mid_label, data.zero_label)
        gutter = max(len(label) for label in labels) + 1
        plot_width = max(width - gutter, 1)
        if data.values:
            rows = plot_rows(list(data.values), data.top, plot_width, plot_height)
        else:
            rows = [data.empty[:plot_width].center(plot_width)] + [" " * plot_width] * (plot_height - 1)
        for index, row in enumerate(rows):
            label = ""
            if index == 0:
                label = data.top_label
            elif index == plot_height - 1:
                label = data.zero_label
            elif index == (plot_height - 1) // 2 and plot_height >= 5:
                label = data.mid_label
            out.append("\n")
            out.append(f"{label:>{gutter - 1}}┤", style=axis_style)
            out.append(row)
        shown = data.times[-plot_width:]
        span = shown[-1] - shown[0] if len(shown) > 1 else None
        out.append("\n")
        out.append(" " * gutter + time_axis(span, plot_width), style=axis_style)
        return out
