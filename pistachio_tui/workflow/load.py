"""Load a workflow from any file people pass around.

Accepted: UI-format JSON (the editor's ``nodes``/``links``, subgraphs in
``definitions.subgraphs``), API-format JSON (``{id: {class_type, inputs}}``,
bare or wrapped in ``{"prompt": …}``), PNG and WebP images with embedded
metadata, and zip archives holding any of those. Whatever goes wrong surfaces
as :class:`WorkflowError` naming the file, the JSON path and what was expected.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pistachio_tui.workflow.errors import WorkflowError
from pistachio_tui.workflow.gcpause import without_cyclic_gc
from pistachio_tui.workflow.imagemeta import is_png, is_webp, png_text, webp_text
from pistachio_tui.workflow.uigraph import UIWorkflow, json_kind, parse_ui

__all__ = [
    "ModelRef", "Workflow", "WorkflowError", "load_workflow", "load_workflows",
    "parse_workflow", "validate_api",
]

#: Files bigger than this are not workflows (and would exhaust memory on a pod).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Archive limits: members read, bytes per member once inflated, and all members together.
MAX_ARCHIVE_MEMBERS = 1000
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
#: The only text entries of an image that hold a workflow; no other is inflated.
_IMAGE_KEYS = ("workflow", "prompt")
_WORKFLOW_SUFFIXES = (".json", ".png", ".webp")


@dataclass(frozen=True)
class ModelRef:
    """A model file a workflow declares it needs (``models`` metadata)."""

    name: str
    url: str | None
    directory: str | None
    node_id: str | None = None
    hash: str | None = None


@dataclass
class Workflow:
    """A loaded workflow: the UI graph, the API prompt, or both (images carry both)."""

    format: Literal["ui", "api"]
    ui: dict[str, Any] | None
    api: dict[str, Any] | None
    name: str
    source: str | None
    model_refs: list[ModelRef] = field(default_factory=list)
    _graph: UIWorkflow | None = field(default=None, repr=False)

    @property
    def graph(self) -> UIWorkflow:
        """The typed UI graph (only for UI-format workflows)."""
        if self._graph is None:
            if self.ui is None:
                raise WorkflowError("this workflow has no UI graph (API format)", file=self.source)
            self._graph = parse_ui(self.ui, self.source)
        return self._graph

    def refresh(self) -> None:
        """Re-read the UI graph after ``ui`` was changed in place."""
        self._graph = None


def is_api_prompt(data: Any) -> bool:
    """Whether ``data`` looks like an API prompt (every value a node with ``class_type``)."""
    return (
        isinstance(data, dict) and bool(data)
        and all(isinstance(v, dict) and "class_type" in v for v in data.values())
    )


def validate_api(prompt: Any, file: str | None = None) -> dict[str, Any]:
    """Check an API prompt's shape; return it unchanged or raise :class:`WorkflowError`."""
    if not isinstance(prompt, dict):
        raise WorkflowError(f"found {json_kind(prompt)}", file=file, path="$", expected="an object of nodes")
    for node_id, node in prompt.items():
        path = f"$[{json.dumps(node_id)}]"
        if not isinstance(node, dict):
            raise WorkflowError(f"found {json_kind(node)}", file=file, path=path, expected="a node object")
        if not isinstance(node.get("class_type"), str):
            raise WorkflowError("missing or non-string class_type", file=file, path=f"{path}.class_type", expected="a node class name")
        if "_meta" in node and not isinstance(node["_meta"], dict):
            raise WorkflowError(f"found {json_kind(node['_meta'])}", file=file, path=f"{path}._meta",
                                expected="an object such as {\"title\": …}")
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            raise WorkflowError(f"found {json_kind(inputs)}", file=file, path=f"{path}.inputs", expected="an object")
        for name, value in inputs.items():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and not isinstance(value[1], int):
                raise WorkflowError(
                    "link output index is not an integer", file=file,
                    path=f"{path}.inputs.{name}[1]", expected="[source_node_id, output_index]",
                )
    return prompt


def _model_entries(raw: Any) -> list[dict[str, Any]]:
    return [m for m in raw if isinstance(m, dict) and isinstance(m.get("name"), str)] if isinstance(raw, list) else []


def model_refs_of(ui: dict[str, Any]) -> list[ModelRef]:
    """``models`` metadata: top-level entries and every node's ``properties.models``."""
    refs: list[ModelRef] = []
    seen: set[tuple[str, str | None, str | None]] = set()

    def add(entry: dict[str, Any], node_id: str | None) -> None:
        url = entry.get("url") if isinstance(entry.get("url"), str) else None
        directory = entry.get("directory") if isinstance(entry.get("directory"), str) else None
        key = (entry["name"], directory, node_id)
        if key in seen:
            return
        seen.add(key)
        digest = entry.get("hash") if isinstance(entry.get("hash"), str) else None
        refs.append(ModelRef(entry["name"], url, directory, node_id, digest))

    graphs = [ui]
    definitions = ui.get("definitions")
    if isinstance(definitions, dict) and isinstance(definitions.get("subgraphs"), list):
        graphs += [g for g in definitions["subgraphs"] if isinstance(g, dict)]
    for graph in graphs:
        for node in graph.get("nodes") or []:
            # Few nodes carry a ``models`` list: the rest are passed over without a call each.
            props = node.get("properties") if isinstance(node, dict) else None
            models = props.get("models") if isinstance(props, dict) else None
            if models:
                for entry in _model_entries(models):
                    add(entry, str(node.get("id")))
    for entry in _model_entries(ui.get("models")):
        add(entry, None)
    return refs


def parse_workflow(data: Any, name: str, source: str | None = None, embedded_prompt: Any = None) -> Workflow:
    """Build a :class:`Workflow` from already-decoded JSON."""
    if isinstance(data, dict) and "nodes" in data:
        graph = parse_ui(data, source)
        api = validate_api(embedded_prompt, source) if embedded_prompt is not None else None
        return Workflow("ui", data, api, name, source, model_refs_of(data), graph)
    if isinstance(data, dict) and "prompt" in data and is_api_prompt(data["prompt"]):
        extra = data.get("extra_data")
        pnginfo = extra.get("extra_pnginfo") if isinstance(extra, dict) else None
        ui = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
        if isinstance(ui, dict) and "nodes" in ui:
            return parse_workflow(ui, name, source, data["prompt"])
        return Workflow("api", None, validate_api(data["prompt"], source), name, source)
    if is_api_prompt(data):
        return Workflow("api", None, validate_api(data, source), name, source)
    if isinstance(data, dict):
        bad = next((k for k, v in data.items() if not (isinstance(v, dict) and "class_type" in v)), None)
        if bad is not None and data:
            raise WorkflowError(
                "neither a UI workflow (no \"nodes\") nor an API prompt", file=source,
                path=f"$[{json.dumps(bad)}]", expected="a node object with class_type",
            )
        raise WorkflowError("empty object", file=source, path="$", expected="a UI workflow or an API prompt")
    raise WorkflowError(f"found {json_kind(data)}", file=source, path="$", expected="a UI workflow or an API prompt object")


class _NotFinite(ValueError):
    """A number JSON cannot carry to a server: ``NaN``, ``Infinity`` or one too big for a float."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(f"the number {text[:40]} is too large for any node input")
    return value


def _no_constants(name: str) -> float:
    # Python writes these for float('nan') / float('inf'); browsers and ComfyUI's own
    # JSON encoding refuse them, so such a workflow could never be queued.
    raise _NotFinite(f"{name} is not a number a node input can take (not valid JSON either)")


#: One decoder for every file: ``json.loads`` with hooks builds a new one per call.
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constants)


def _json(text: str, source: str | None, where: str = "$") -> Any:
    try:
        return _DECODER.decode(text)
    except _NotFinite as exc:
        raise WorkflowError(str(exc), file=source, path=where, expected="a finite number") from None
    except (ValueError, RecursionError) as exc:
        detail = f"line {exc.lineno} column {exc.colno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise WorkflowError(f"invalid JSON ({detail})", file=source, path=where, expected="JSON text") from None


def _from_image_text(texts: dict[str, str], name: str, source: str | None, kind: str) -> Workflow:
    workflow_text, prompt_text = texts.get("workflow"), texts.get("prompt")
    if workflow_text is None and prompt_text is None:
        raise WorkflowError(f"this {kind} carries no ComfyUI metadata", file=source, path=kind,
                            expected="a 'workflow' or 'prompt' text entry")
    prompt = _json(prompt_text, source, f"{kind}.prompt") if prompt_text is not None else None
    if workflow_text is not None:
        ui = _json(workflow_text, source, f"{kind}.workflow")
        if isinstance(ui, dict) and "nodes" in ui:
            return parse_workflow(ui, name, source, prompt)
    return parse_workflow(prompt, name, source)


def _from_bytes(data: bytes, name: str, source: str | None, depth: int = 0) -> list[Workflow]:
    if len(data) > MAX_FILE_BYTES:
        raise WorkflowError("file is larger than 256 MB", file=source, path="$", expected="a workflow file")
    if is_png(data):
        return [_from_image_text(png_text(data, source, _IMAGE_KEYS), name, source, "png")]
    if is_webp(data):
        return [_from_image_text(webp_text(data, source), name, source, "webp")]
    if data[:4] == b"PK\x03\x04":
        if depth:
            raise WorkflowError("archive inside an archive", file=source, path="zip", expected="JSON, PNG or WebP members")
        return _from_zip(data, source)
    try:
        # Editors on Windows sometimes save UTF-16 with a byte-order mark.
        text = data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WorkflowError("not UTF-8 or UTF-16 text, PNG, WebP or zip", file=source, path="$",
                            expected="a workflow file") from None
    return [parse_workflow(_json(text, source), name, source)]


def _from_zip(data: bytes, source: str | None) -> list[Workflow]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [i for i in archive.infolist() if not i.is_dir() and i.filename.lower().endswith(_WORKFLOW_SUFFIXES)]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise WorkflowError(f"broken zip archive ({exc})", file=source, path="zip") from None
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise WorkflowError(f"archive holds {len(members)} files", file=source, path="zip",
                            expected=f"at most {MAX_ARCHIVE_MEMBERS}")
    found: list[Workflow] = []
    budget = MAX_ARCHIVE_BYTES
    for info in members:
        where = f"{source or 'archive'}!{info.filename}"
        if info.file_size > MAX_MEMBER_BYTES:
            raise WorkflowError(f"archive member is larger than {MAX_MEMBER_BYTES >> 20} MB (the limit for one "
                                "member)", file=where, path="$")
        # The sizes the archive states may lie: reading stops at the limit whatever they say.
        limit = min(MAX_MEMBER_BYTES, budget)
        try:
            with archive.open(info) as handle:
                blob = handle.read(limit + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise WorkflowError(f"cannot read archive member ({exc})", file=where, path="$") from None
        if len(blob) > limit:
            if limit < MAX_MEMBER_BYTES:
                raise WorkflowError(f"archive inflates to more than {MAX_ARCHIVE_BYTES >> 20} MB in total (the "
                                    "limit for one archive)", file=source, path="zip")
            raise WorkflowError(f"archive member is larger than {MAX_MEMBER_BYTES >> 20} MB (the limit for one "
                                "member)", file=where, path="$")
        budget -= len(blob)
        stem = PurePosixPath(info.filename).stem
        try:
            found.extend(_from_bytes(blob, stem, where, depth=1))
        except WorkflowError:
            if info.filename.lower().endswith(".json"):
                raise
    if not found:
        raise WorkflowError("archive holds no workflow", file=source, path="zip",
                            expected="a .json workflow or an image with metadata")
    return found


@without_cyclic_gc
def load_workflows(source: Path | str | bytes, name: str | None = None) -> list[Workflow]:
    """Every workflow in ``source`` (several only for zip archives)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(source), name or "workflow", None)
    path = Path(source)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise WorkflowError("file is larger than 256 MB", file=str(path), path="$", expected="a workflow file")
        data = path.read_bytes()
    except OSError as exc:
        raise WorkflowError(f"cannot read the file ({exc.strerror or exc})", file=str(path), path="$") from None
    return _from_bytes(data, name or path.stem, str(path))


def load_workflow(source: Path | str | bytes, name: str | None = None) -> Workflow:
    """Load one workflow from a path or raw bytes (JSON, PNG, WebP, or a zip holding one)."""
    found = load_workflows(source, name)
    if len(found) > 1:
        names = ", ".join(w.name for w in found[:5])
        raise WorkflowError(
            f"archive holds {len(found)} workflows ({names}…); use load_workflows to pick one",
            file=found[0].source, path="zip", expected="a single workflow",
        )
    return found[0]
