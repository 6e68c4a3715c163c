"""ComfyUI wire data as dataclasses; every ``from_wire`` turns one JSON shape into a type.

Shapes follow a real ComfyUI 0.8.0 (see the recorded traces in the tests).
Parsers are lenient about missing optional keys, since older and newer servers
add and drop fields, but they never guess values that are not there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: ComfyUI 0.8.0 names the missing class only in the message of an ``invalid_prompt`` error.
_MISSING_NODE = re.compile(r"node (?P<name>.+?) does not exist")
#: Newer servers say ``missing_node_type`` and put the class in ``extra_info.class_type``.
MISSING_NODE_TYPE = "missing_node_type"
#: No memory a server reports is this large (8 EiB); a bigger figure is a broken answer.
_MAX_BYTES = 2**63


def _bytes(data: dict[str, Any], key: str) -> int:
    """A byte count from ``/system_stats``; ValueError (the client's BadResponse) for Infinity,
    NaN, a negative or an absurd figure, which would otherwise be drawn as garbage."""
    value = data.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < _MAX_BYTES:
        raise ValueError(f"{key} = {value!r} is not a size in bytes")
    return int(value)


@dataclass
class Device:
    """One torch device as ``/system_stats`` reports it (bytes)."""

    name: str
    type: str
    index: int | None
    vram_total: int
    vram_free: int
    torch_vram_total: int
    torch_vram_free: int

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Device:
        return cls(
            name=str(data.get("name", "")),
            type=str(data.get("type", "")),
            index=data.get("index"),
            vram_total=_bytes(data, "vram_total"),
            vram_free=_bytes(data, "vram_free"),
            torch_vram_total=_bytes(data, "torch_vram_total"),
            torch_vram_free=_bytes(data, "torch_vram_free"),
        )


@dataclass
class SystemStats:
    """``GET /system_stats``: versions, RAM and devices."""

    os: str
    comfyui_version: str
    python_version: str
    pytorch_version: str
    ram_total: int
    ram_free: int
    argv: list[str]
    devices: list[Device]
    raw: dict[str, Any]

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> SystemStats:
        system = body["system"]
        return cls(
            os=str(system.get("os", "")),
            comfyui_version=str(system.get("comfyui_version", "unknown")),
            python_version=str(system.get("python_version", "")),
            pytorch_version=str(system.get("pytorch_version", "")),
            ram_total=_bytes(system, "ram_total"),
            ram_free=_bytes(system, "ram_free"),
            argv=list(system.get("argv") or []),
            devices=[Device.from_wire(d) for d in body.get("devices", [])],
            raw=body,
        )

    @property
    def main_device(self) -> Device | None:
        """The device ComfyUI runs on (its first); None when it reports none."""
        return self.devices[0] if self.devices else None


@dataclass
class QueueItem:
    """One queue entry; on the wire a list ``[number, prompt_id, prompt, extra_data, outputs_to_execute]``."""

    number: int
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs_to_execute: list[str]

    @classmethod
    def from_wire(cls, entry: list[Any]) -> QueueItem:
        number, prompt_id, prompt = entry[0], entry[1], entry[2]
        extra = entry[3] if len(entry) > 3 else {}
        outputs = entry[4] if len(entry) > 4 else []
        return cls(int(number), str(prompt_id), dict(prompt), dict(extra or {}), [str(o) for o in outputs or []])


@dataclass
class QueueState:
    """``GET /queue``: what runs now and what waits."""

    running: list[QueueItem]
    pending: list[QueueItem]

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> QueueState:
        def items(key: str) -> list[QueueItem]:
            return sorted((QueueItem.from_wire(e) for e in body.get(key, [])), key=lambda i: i.number)

        return cls(running=items("queue_running"), pending=items("queue_pending"))

    def ids(self) -> set[str]:
        """Prompt ids that are running or pending."""
        return {item.prompt_id for item in self.running + self.pending}


@dataclass
class OutputFile:
    """A file a node produced, fetchable with ``ComfyClient.view``."""

    node_id: str
    filename: str
    subfolder: str
    type: str
    #: The output key it came under: "images", "gifs", "audio", ...
    kind: str


def parse_outputs(node_id: str, output: dict[str, Any]) -> list[OutputFile]:
    """Files in one node's output dict; non-file entries (text, flags) are skipped."""
    files = []
    for kind, values in output.items():
        if not isinstance(values, list):
            continue
        for value in values:
            if isinstance(value, dict) and "filename" in value:
                files.append(OutputFile(
                    node_id=str(node_id),
                    filename=str(value["filename"]),
                    subfolder=str(value.get("subfolder", "")),
                    type=str(value.get("type", "output")),
                    kind=kind,
                ))
    return files


@dataclass
class HistoryEntry:
    """One finished prompt from ``GET /history``.

    ``status`` is the server's ``status_str`` ("success" or "error"; an
    interrupted prompt is an "error" there too); ``outcome`` tells the three apart.
    Times are epoch seconds taken from the server's message timestamps.
    """

    prompt_id: str
    number: int
    prompt: dict[str, Any]
    status: str
    completed: bool
    outputs: list[OutputFile]
    messages: list[tuple[str, dict[str, Any]]]
    started_at: float | None
    finished_at: float | None
    #: Data of the ``execution_error`` (or ``execution_interrupted``) message.
    error: dict[str, Any] | None
    raw: dict[str, Any]
    outputs_to_execute: list[str] = field(default_factory=list)

    @classmethod
    def from_wire(cls, prompt_id: str, data: dict[str, Any]) -> HistoryEntry:
        queued = data.get("prompt") or [0, prompt_id, {}, {}, []]
        status = data.get("status") or {}
        messages = [(str(m[0]), dict(m[1] or {})) for m in status.get("messages", []) if len(m) >= 2]
        stamps = {kind: msg["timestamp"] / 1000 for kind, msg in messages if "timestamp" in msg}
        started = stamps.get("execution_start")
        finished = next((stamps[k] for k in _ENDINGS if k in stamps), None)
        error = next((msg for kind, msg in messages if kind in ("execution_error", "execution_interrupted")), None)
        outputs = [f for node_id, out in (data.get("outputs") or {}).items() for f in parse_outputs(node_id, out)]
        return cls(
            prompt_id=prompt_id,
            number=int(queued[0]),
            prompt=dict(queued[2]) if len(queued) > 2 else {},
            status=str(status.get("status_str") or "unknown"),
            completed=bool(status.get("completed", False)),
            outputs=outputs,
            messages=messages,
            started_at=started,
            finished_at=finished,
            error=error,
            raw=data,
            outputs_to_execute=[str(o) for o in queued[4]] if len(queued) > 4 else [],
        )

    @property
    def extra_data(self) -> dict[str, Any]:
        """What the client sent beside the prompt (``client_id``, ``extra_pnginfo``, its own keys)."""
        queued = self.raw.get("prompt") or []
        return dict(queued[3]) if len(queued) > 3 and isinstance(queued[3], dict) else {}

    @property
    def outcome(self) -> str:
        """"success", "error" or "interrupted"."""
        if any(kind == "execution_interrupted" for kind, _ in self.messages):
            return "interrupted"
        return "success" if self.status == "success" else "error"

    @property
    def cached_nodes(self) -> list[str]:
        """Nodes the server did not run because their result was cached."""
        for kind, msg in self.messages:
            if kind == "execution_cached":
                return [str(n) for n in msg.get("nodes", [])]
        return []

    @property
    def duration(self) -> float | None:
        """Seconds from execution start to its end, when both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


_ENDINGS = ("execution_success", "execution_error", "execution_interrupted")


@dataclass
class InputError:
    """One validation problem with one input of one node."""

    type: str
    message: str
    details: str
    input_name: str | None
    received_value: Any
    #: The allowed values when the input is a list (e.g. model files on the server).
    allowed: list[Any] | None
    extra_info: dict[str, Any]
    node_id: str = ""
    class_type: str = ""

    @classmethod
    def from_wire(cls, data: dict[str, Any], node_id: str = "", class_type: str = "") -> InputError:
        extra = data.get("extra_info") or {}
        config = extra.get("input_config")
        allowed = config[0] if isinstance(config, list) and config and isinstance(config[0], list) else None
        return cls(
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            details=str(data.get("details", "")),
            input_name=extra.get("input_name"),
            received_value=extra.get("received_value"),
            allowed=allowed,
            extra_info=extra,
            node_id=node_id,
            class_type=class_type,
        )

    def describe(self) -> str:
        """One readable line: node, class, input, received value and what is allowed."""
        where = f"node {self.node_id} ({self.class_type})" if self.node_id else "prompt"
        parts = [where]
        if self.input_name:
            parts.append(f"input {self.input_name!r}")
        text = f"{' '.join(parts)}: {self.message}"
        if self.received_value is not None:
            text += f"; received {self.received_value!r}"
        elif self.details and self.details != self.input_name:
            text += f" ({self.details})"
        if self.allowed is not None:
            text += f"; allowed: {_short_list(self.allowed)}"
        return text


def _short_list(values: list[Any], limit: int = 8) -> str:
    if not values:
        return "(none on the server)"
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", … {len(values) - limit} more" if len(values) > limit else "")


@dataclass
class NodeError:
    """Validation problems of one node."""

    node_id: str
    class_type: str
    errors: list[InputError]
    dependent_outputs: list[str]


@dataclass
class ValidationReport:
    """The body of a ``POST /prompt`` 400: why the server refused to queue a prompt."""

    error_type: str
    message: str
    details: str
    node_errors: list[NodeError]
    extra_info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> ValidationReport:
        error = body.get("error") or {}
        if isinstance(error, str):
            error = {"type": "error", "message": error}
        node_errors = []
        for node_id, entry in (body.get("node_errors") or {}).items():
            class_type = str(entry.get("class_type", ""))
            node_errors.append(NodeError(
                node_id=str(node_id),
                class_type=class_type,
                errors=[InputError.from_wire(e, str(node_id), class_type) for e in entry.get("errors", [])],
                dependent_outputs=[str(o) for o in entry.get("dependent_outputs", [])],
            ))
        return cls(
            error_type=str(error.get("type", "")),
            message=str(error.get("message", "")),
            details=str(error.get("details", "")),
            node_errors=node_errors,
            extra_info=dict(error.get("extra_info") or {}),
        )

    def missing_node_types(self) -> list[str]:
        """Node classes the server does not have (ComfyUI stops at the first one).

        0.8.0: ``invalid_prompt`` "Cannot execute because node X does not exist.";
        newer: ``missing_node_type`` "Node '<title>' not found", the class in
        ``extra_info.class_type`` (None when the node has no class at all).
        """
        if self.error_type == MISSING_NODE_TYPE:
            class_type = self.extra_info.get("class_type")
            return [str(class_type)] if class_type else []
        match = _MISSING_NODE.search(self.message) if self.error_type == "invalid_prompt" else None
        return [match.group("name")] if match else []

    def missing_models(self) -> list[InputError]:
        """Inputs naming a file the server does not list (``value_not_in_list``)."""
        return [e for node in self.node_errors for e in node.errors if e.type == "value_not_in_list"]

    def describe(self) -> list[str]:
        """Readable lines: the overall error, then one line per input problem."""
        head = self.message or self.error_type
        if self.details and not self.node_errors:
            head += f" ({self.details})"
        return [head] + [e.describe() for node in self.node_errors for e in node.errors]


@dataclass
class SubmitResult:
    """``POST /prompt`` accepted the prompt."""

    prompt_id: str
    number: int


@dataclass
class LogEntry:
    """One chunk of the server's console (``t`` is an ISO time, ``m`` may be a partial line)."""

    t: str
    m: str


#: ``status`` values of ``/api/jobs`` (ComfyUI ``comfy_execution/jobs.py``).
JOB_PENDING, JOB_RUNNING, JOB_COMPLETED, JOB_FAILED = "pending", "in_progress", "completed", "failed"
JOB_FINAL = frozenset({JOB_COMPLETED, JOB_FAILED})


@dataclass
class Job:
    """One entry of ``GET /api/jobs`` (or the whole of ``GET /api/jobs/{id}``).

    Much smaller than a history entry: no prompt, a count of outputs and one
    ``preview_output`` instead of every file. ``detail`` (only from
    ``/api/jobs/{id}`` of a finished job) holds the full outputs, status
    messages and prompt, from which :meth:`history_entry` rebuilds a
    ``HistoryEntry``. Times are epoch seconds.
    """

    id: str
    status: str
    priority: float
    created_at: float | None
    started_at: float | None
    finished_at: float | None
    outputs_count: int
    preview: OutputFile | None
    error: dict[str, Any] | None
    detail: dict[str, Any] | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Job:
        def seconds(key: str) -> float | None:
            value = data.get(key)
            return value / 1000 if isinstance(value, (int, float)) and not isinstance(value, bool) else None

        preview = data.get("preview_output")
        preview_file = None
        if isinstance(preview, dict) and "filename" in preview:
            preview_file = parse_outputs(str(preview.get("nodeId", "")),
                                         {str(preview.get("mediaType", "images")): [preview]})[0]
        detailed = "execution_status" in data or "outputs" in data
        return cls(
            id=str(data["id"]),
            status=str(data.get("status", "")),
            priority=float(data.get("priority") or 0),
            created_at=seconds("create_time"),
            started_at=seconds("execution_start_time"),
            finished_at=seconds("execution_end_time"),
            outputs_count=int(data.get("outputs_count") or 0),
            preview=preview_file,
            error=data.get("execution_error") if isinstance(data.get("execution_error"), dict) else None,
            detail=data if detailed else None,
        )

    @property
    def finished(self) -> bool:
        return self.status in JOB_FINAL

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def history_entry(self) -> HistoryEntry | None:
        """The history entry this finished job stands for (None without the detail)."""
        if self.detail is None or not self.finished:
            return None
        workflow = self.detail.get("workflow") or {}
        queued: list[Any] = [self.priority, self.id, workflow.get("prompt") or {}, workflow.get("extra_data") or {}, []]
        return HistoryEntry.from_wire(self.id, {
            "prompt": queued,
            "outputs": self.detail.get("outputs") or {},
            "status": self.detail.get("execution_status") or {
                "status_str": "success" if self.status == JOB_COMPLETED else "error",
                "completed": self.status == JOB_COMPLETED, "messages": []},
        })


@dataclass
class JobsPage:
    """``GET /api/jobs``: one page of jobs, newest first by default, and the total."""

    jobs: list[Job]
    total: int
    has_more: bool

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> JobsPage:
        pagination = body.get("pagination") or {}
        jobs = [Job.from_wire(j) for j in body["jobs"]]
        return cls(jobs=jobs, total=int(pagination.get("total", len(jobs))),
                   has_more=bool(pagination.get("has_more", False)))
