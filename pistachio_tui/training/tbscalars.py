"""Read TensorBoard scalars from a run folder, a few new events at a time.

Uses TensorBoard's own maintained event-file reader: it keeps a byte offset
per file, so each :meth:`ScalarReader.read` returns only events written since
the previous call, and a record cut in half by a concurrent write is retried
on the next call. A resumed run adds a new ``events.out.tfevents.*`` file next
to the old one; new files are picked up as they appear, and files are read in
the order they were created, so a value written again by a resumed run comes
after the one it replaces.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util import tensor_util

__all__ = ["Scalar", "ScalarReader", "EVENT_FILE_GLOB"]

EVENT_FILE_GLOB = "events.out.tfevents.*"
#: Events read per call at most, so a long run's backlog is consumed in slices.
DEFAULT_MAX_EVENTS = 20_000


@dataclass(frozen=True)
class Scalar:
    tag: str
    step: int
    value: float
    wall_time: float
    #: Name of the event file it came from (one file per trainer process).
    file: str = ""


class ScalarReader:
    """Incremental reader of every scalar in ``run_dir``'s event files."""

    def __init__(self, run_dir: Path | str, *, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self.run_dir = Path(run_dir)
        self._max_events = max_events
        self._loaders: dict[Path, EventFileLoader] = {}
        # TensorBoard logs every truncated-record retry at debug level; keep it quiet.
        logging.getLogger("tensorboard").setLevel(logging.WARNING)

    def read(self) -> list[Scalar]:
        """Scalars added since the last call, in file order (oldest file first)."""
        out: list[Scalar] = []
        for path in sorted(self.run_dir.glob(EVENT_FILE_GLOB), key=_creation_order):
            loader = self._loaders.get(path)
            if loader is None:
                loader = self._loaders[path] = EventFileLoader(str(path))
            for event in loader.Load():
                if event.HasField("summary"):
                    out.extend(_scalars(event, path.name))
                if len(out) >= self._max_events:
                    return out
        return out


def _creation_order(path: Path) -> tuple[int, int, str]:
    """TensorBoard names files ``events.out.tfevents.<seconds>.<host>.<pid>.<counter>``
    (the host may hold dots): order by the time, then the counter, not by text."""
    parts = path.name.split(".")
    seconds = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else 0
    counter = int(parts[-1]) if len(parts) > 5 and parts[-1].isdigit() else 0
    return seconds, counter, path.name


def _scalars(event, file: str) -> list[Scalar]:
    found = []
    for value in event.summary.value:
        kind = value.WhichOneof("value")
        if kind == "simple_value":
            number = float(value.simple_value)
        elif kind == "tensor" and value.metadata.plugin_data.plugin_name in ("scalars", ""):
            array = tensor_util.make_ndarray(value.tensor)
            if array.size != 1:
                continue
            number = float(array.reshape(()).item())
        else:
            continue
        found.append(Scalar(value.tag, int(event.step), number, float(event.wall_time), file))
    return found
