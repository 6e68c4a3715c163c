"""ComfyUI websocket messages as typed events.

``parse_message`` turns one frame (JSON text or a binary preview) into an event;
:mod:`pistachio_tui.comfy.stream` reads them off a socket that survives disconnects.

Events are values: nothing changes one after it is made. They are slotted, not frozen,
dataclasses because one is built for every frame, and a frozen one takes three times as
long to build (each field goes through ``object.__setattr__``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Union

import orjson

from pistachio_tui.comfy.types import HistoryEntry, LogEntry, OutputFile, QueueState, parse_outputs

#: Binary frame event types (ComfyUI ``server.py`` ``BinaryEventTypes``).
PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
_IMAGE_TYPES = {1: "jpeg", 2: "png"}
#: What this client tells the server it understands, as the first websocket message
#: (ComfyUI ``comfy_api/feature_flags.py``): previews then come as type-4 frames that name
#: their prompt and node.
CLIENT_FEATURES: dict[str, Any] = {"supports_preview_metadata": True}


def _seconds(data: dict[str, Any]) -> float | None:
    stamp = data.get("timestamp")
    return stamp / 1000 if isinstance(stamp, (int, float)) else None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(slots=True)
class Status:
    """Queue size changed; the first one after connecting carries the session id."""

    queue_remaining: int
    sid: str | None = None


@dataclass(slots=True)
class ExecutionStart:
    """The server started a prompt (``timestamp`` in epoch seconds)."""

    prompt_id: str
    timestamp: float | None = None


@dataclass(slots=True)
class ExecutionCached:
    """Nodes of the prompt that will not run because their result is cached."""

    prompt_id: str
    nodes: list[str]
    timestamp: float | None = None


@dataclass(slots=True)
class Executing:
    """A node started; ``node`` None marks the end of the prompt."""

    prompt_id: str | None
    node: str | None
    display_node: str | None = None


@dataclass(slots=True)
class Progress:
    """Step ``value`` of ``max`` of a node (a sampler's steps)."""

    prompt_id: str | None
    node: str | None
    value: int
    max: int


@dataclass(slots=True)
class NodeProgress:
    """One node's entry in ``progress_state``; ``state`` is "pending", "running" or "finished"."""

    node_id: str
    value: float
    max: float
    state: str
    display_node_id: str | None = None
    parent_node_id: str | None = None
    real_node_id: str | None = None


@dataclass(slots=True)
class ProgressState:
    """Progress of every node the server has touched so far in a prompt.

    A sampler sends one with every step, each naming every node so far, and the tracker needs
    only which ones finished: ``entries`` keeps each node's object as the server sent it, and
    ``nodes`` reads them into ``NodeProgress`` when asked.
    """

    prompt_id: str
    entries: dict[str, dict[str, Any]]

    @property
    def nodes(self) -> dict[str, NodeProgress]:
        """Each node's progress by node id; an entry with a value of the wrong type is left out."""
        nodes = {}
        for node_id, entry in self.entries.items():
            try:
                nodes[node_id] = _node_progress(node_id, entry)
            except (TypeError, ValueError, OverflowError):
                continue
        return nodes

    def finished_nodes(self, known: Collection[str] = ()) -> list[str]:
        """The ids of the nodes it reports finished, but for those in ``known``."""
        # ``known`` first: a sampler's every step names the nodes finished long ago again.
        return [node_id for node_id, entry in self.entries.items()
                if node_id not in known and entry.get("state") == "finished"]


@dataclass(slots=True)
class Executed:
    """A node finished and produced UI output (images, text...)."""

    prompt_id: str
    node: str
    display_node: str | None
    output: dict[str, Any]

    @property
    def files(self) -> list[OutputFile]:
        """The files in ``output``."""
        return parse_outputs(self.node, self.output)


@dataclass(slots=True)
class ExecutionSuccess:
    """The prompt finished without error."""

    prompt_id: str
    timestamp: float | None = None


@dataclass(slots=True)
class ExecutionError:
    """A node raised; ``exception_message`` is what the node said."""

    prompt_id: str
    node_id: str
    node_type: str
    exception_message: str
    exception_type: str
    traceback: list[str]
    executed: list[str] = field(default_factory=list)
    current_outputs: list[str] = field(default_factory=list)
    timestamp: float | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ExecutionError:
        """From an ``execution_error`` message (websocket or history)."""
        return cls(
            prompt_id=str(data["prompt_id"]),
            node_id=str(data.get("node_id", "")),
            node_type=str(data.get("node_type", "")),
            # The server keeps the exception's trailing newline; nobody wants it.
            exception_message=str(data.get("exception_message", "")).strip(),
            exception_type=str(data.get("exception_type", "")),
            traceback=[str(line) for line in data.get("traceback", [])],
            executed=[str(n) for n in data.get("executed", [])],
            current_outputs=[str(n) for n in data.get("current_outputs", [])],
            timestamp=_seconds(data),
        )


@dataclass(slots=True)
class ExecutionInterrupted:
    """The prompt was interrupted while ``node_id`` ran."""

    prompt_id: str
    node_id: str
    node_type: str
    executed: list[str]
    timestamp: float | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ExecutionInterrupted:
        """From an ``execution_interrupted`` message (websocket or history)."""
        return cls(
            prompt_id=str(data["prompt_id"]),
            node_id=str(data.get("node_id", "")),
            node_type=str(data.get("node_type", "")),
            executed=[str(n) for n in data.get("executed", [])],
            timestamp=_seconds(data),
        )


@dataclass(slots=True)
class PreviewImage:
    """A live preview frame; ``image_type`` is "jpeg" or "png".

    Type-4 frames name the prompt and node they belong to; type-1 frames (servers or clients
    without ``supports_preview_metadata``) do not, and belong to whatever runs now.
    """

    image_type: str
    data: bytes
    prompt_id: str | None = None
    node_id: str | None = None
    display_node_id: str | None = None


@dataclass(slots=True)
class LogLines:
    """New console output of the server (after ``subscribe_logs``)."""

    entries: list[LogEntry]


@dataclass(slots=True)
class FeatureFlags:
    """The server's answer to our feature flags (what it supports)."""

    flags: dict[str, Any]


@dataclass(slots=True)
class Unknown:
    """A message this version does not understand (custom nodes, Manager ``cm-*`` events)."""

    type: str
    data: Any


@dataclass(slots=True)
class Connected:
    """The websocket is open; ``sid`` is the session id the server chose."""

    sid: str


@dataclass(slots=True)
class Disconnected:
    """The websocket dropped (or could not open); the next attempt is in ``retry_in`` seconds."""

    reason: str
    retry_in: float


@dataclass(slots=True)
class Resynced:
    """After a reconnect: the queue now, and the newest finished prompts by id."""

    queue: QueueState
    finished: dict[str, HistoryEntry]


Event = Union[
    Status, ExecutionStart, ExecutionCached, Executing, Progress, ProgressState, Executed,
    ExecutionSuccess, ExecutionError, ExecutionInterrupted, PreviewImage, LogLines, FeatureFlags, Unknown,
    Connected, Disconnected, Resynced,
]


_OBJECT = frozenset({dict})


def _progress_state(d: dict[str, Any]) -> ProgressState:
    # JSON object keys are always strings; the values must be objects for anyone to read them.
    # Their types are checked in C (no generator): a sampler sends these with every step.
    nodes = d["nodes"]
    if type(nodes) is not dict or not _OBJECT.issuperset(map(type, nodes.values())):
        raise TypeError("progress_state nodes are not objects")
    return ProgressState(str(d["prompt_id"]), nodes)


def _progress(d: dict[str, Any]) -> Progress:
    # Without helper calls: a sampler sends one with every step.
    prompt_id, node = d.get("prompt_id"), d.get("node")
    return Progress(None if prompt_id is None else str(prompt_id), None if node is None else str(node),
                    int(d["value"]), int(d["max"]))


def _node_progress(node_id: str, data: dict[str, Any]) -> NodeProgress:
    get = data.get
    display, parent, real = get("display_node_id"), get("parent_node_id"), get("real_node_id")
    return NodeProgress(str(get("node_id", node_id)), float(get("value", 0)), float(get("max", 1)),
                        str(get("state", "")), None if display is None else str(display),
                        None if parent is None else str(parent), None if real is None else str(real))


_PARSERS: dict[str, Callable[[dict[str, Any]], Event]] = {
    "status": lambda d: Status(int(d["status"]["exec_info"]["queue_remaining"]), _opt_str(d.get("sid"))),
    "execution_start": lambda d: ExecutionStart(str(d["prompt_id"]), _seconds(d)),
    "execution_cached": lambda d: ExecutionCached(str(d["prompt_id"]), [str(n) for n in d["nodes"]], _seconds(d)),
    "executing": lambda d: Executing(_opt_str(d.get("prompt_id")), _opt_str(d.get("node")),
                                     _opt_str(d.get("display_node"))),
    "progress": _progress,
    "progress_state": _progress_state,
    "executed": lambda d: Executed(str(d["prompt_id"]), str(d["node"]), _opt_str(d.get("display_node")),
                                   dict(d.get("output") or {})),
    "execution_success": lambda d: ExecutionSuccess(str(d["prompt_id"]), _seconds(d)),
    "execution_error": ExecutionError.from_wire,
    "execution_interrupted": ExecutionInterrupted.from_wire,
    "logs": lambda d: LogLines([LogEntry(t=str(e.get("t", "")), m=str(e.get("m", ""))) for e in d["entries"]]),
    "feature_flags": lambda d: FeatureFlags(dict(d)),
}


def parse_message(raw: str | bytes) -> Event:
    """One websocket frame as an event; anything unexpected becomes ``Unknown``."""
    if not isinstance(raw, str):
        return _parse_binary(bytes(raw))
    try:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            # ComfyUI encodes with Python's json, which writes NaN and Infinity; strict JSON refuses them.
            message = json.loads(raw)
        kind, data = message["type"], message.get("data")
    except (ValueError, TypeError, KeyError):
        return Unknown("invalid", raw)
    parser = _PARSERS.get(kind)
    if parser is None or not isinstance(data, dict):
        return Unknown(str(kind), data)
    try:
        return parser(data)
    # OverflowError: int() of an Infinity, which Python's own json.dumps writes for float('inf').
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return Unknown(str(kind), data)


def _parse_binary(frame: bytes) -> Event:
    if len(frame) < 4:
        return Unknown("binary", frame)
    (event_type,) = struct.unpack(">I", frame[:4])
    if event_type == PREVIEW_IMAGE and len(frame) >= 8:
        (image_type,) = struct.unpack(">I", frame[4:8])
        return PreviewImage(_IMAGE_TYPES.get(image_type, f"unknown-{image_type}"), frame[8:])
    if event_type == PREVIEW_IMAGE_WITH_METADATA and len(frame) >= 8:
        return _preview_with_metadata(frame)
    return Unknown(f"binary-{event_type}", frame[4:])


def _preview_with_metadata(frame: bytes) -> Event:
    # Layout: event type, metadata length, metadata JSON, then the image bytes.
    (length,) = struct.unpack(">I", frame[4:8])
    try:
        meta = json.loads(frame[8:8 + length])
    except (ValueError, UnicodeDecodeError):
        return Unknown("binary-4", frame[4:])
    if not isinstance(meta, dict) or len(frame) < 8 + length:
        return Unknown("binary-4", frame[4:])
    mime = str(meta.get("image_type", "image/jpeg"))
    return PreviewImage(mime.rsplit("/", 1)[-1], frame[8 + length:], _opt_str(meta.get("prompt_id")),
                        _opt_str(meta.get("node_id")), _opt_str(meta.get("display_node_id")))
