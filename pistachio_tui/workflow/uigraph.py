"""Typed view of a UI-format workflow (the web editor's ``nodes``/``links`` file).

Parsing checks every field the converter and the analyser rely on and reports
the first problem as a :class:`WorkflowError` with its JSON path, so nothing
downstream has to guess about shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pistachio_tui.workflow.errors import WorkflowError
from pistachio_tui.workflow.gcpause import without_cyclic_gc

#: Node ids the editor gives a subgraph's input and output panels.
SUBGRAPH_INPUT_ID = "-10"
SUBGRAPH_OUTPUT_ID = "-20"

MODE_ALWAYS = 0
MODE_NEVER = 2  # "muted"
MODE_BYPASS = 4


@dataclass(slots=True)
class InputSlot:
    name: str
    type: str
    link: int | None
    widget: str | None = None


@dataclass(slots=True)
class OutputSlot:
    name: str
    type: str
    links: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Node:
    id: str
    type: str
    mode: int
    title: str | None
    inputs: list[InputSlot]
    outputs: list[OutputSlot]
    widgets_values: list[Any] | dict[str, Any] | None
    properties: dict[str, Any]
    path: str
    raw: dict[str, Any]


@dataclass(slots=True)
class Link:
    id: int
    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: str


@dataclass(slots=True)
class SubgraphSlot:
    name: str
    type: str
    link_ids: list[int]


@dataclass(slots=True)
class Graph:
    """The root graph or one subgraph definition."""

    nodes: dict[str, Node]
    links: dict[int, Link]
    path: str
    id: str = ""
    name: str = ""
    inputs: list[SubgraphSlot] = field(default_factory=list)
    outputs: list[SubgraphSlot] = field(default_factory=list)


@dataclass(slots=True)
class UIWorkflow:
    root: Graph
    subgraphs: dict[str, Graph]
    models: list[dict[str, Any]]
    extra: dict[str, Any]

    def all_nodes(self) -> list[Node]:
        """Every node of the root graph and of every subgraph definition."""
        nodes = list(self.root.nodes.values())
        for graph in self.subgraphs.values():
            nodes.extend(graph.nodes.values())
        return nodes


class _Reader:
    """Small typed accessors that raise WorkflowError with the JSON path."""

    def __init__(self, file: str | None) -> None:
        self.file = file

    def fail(self, path: str, message: str, expected: str = "") -> WorkflowError:
        return WorkflowError(message, file=self.file, path=path, expected=expected)

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"found {json_kind(value)}", "an object")
        return value

    def arr(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"found {json_kind(value)}", "an array")
        return value

    def int_(self, value: Any, path: str) -> int:
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(path, f"found {json_kind(value)}", "an integer")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            if isinstance(value, str) and value.lstrip("-").isdigit():
                return int(value)
            raise self.fail(path, f"found {json_kind(value)}", "an integer")
        return int(value)

    def opt_int(self, value: Any, path: str) -> int | None:
        return None if value is None else self.int_(value, path)

    def node_id(self, value: Any, path: str) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
            if isinstance(value, float) and math.isfinite(value) and value == int(value):
                return str(int(value))
            raise self.fail(path, f"found {json_kind(value)}", "a node id (integer or string)")
        return str(value)

    def str_(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"found {json_kind(value)}", "a string")
        return value


def json_kind(value: Any) -> str:
    """How an error names a JSON value it did not expect ("null", "the number 5", "an array")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _slot_type(value: Any) -> str:
    # Types are strings in practice; old files hold numbers for event slots.
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _plain_id(value: Any) -> str | None:
    """A node id in its usual form (an integer or a non-empty string), else ``None``."""
    kind = type(value)
    if kind is int:
        return str(value)
    return value if kind is str and value else None


#: The element types of a list of link ids in the usual shape (``bool`` is not an id).
_ONLY_INT = frozenset({int})


def _parse_link(r: _Reader, raw: Any, graph_path: str, index: int) -> Link:
    # Files hold thousands of links in the usual shape; only an unusual one pays for the
    # checks that name the bad field.
    if type(raw) is list and len(raw) >= 5:
        ident, origin, oslot, target, tslot = raw[:5]
        origin_id, target_id = _plain_id(origin), _plain_id(target)
        if type(ident) is int and type(oslot) is int and type(tslot) is int and origin_id and target_id:
            ltype = raw[5] if len(raw) > 5 else ""
            return Link(ident, origin_id, oslot, target_id, tslot, ltype if type(ltype) is str else _slot_type(ltype))
    elif type(raw) is dict:  # subgraph definitions keep links as objects
        ident, oslot, tslot = raw.get("id"), raw.get("origin_slot"), raw.get("target_slot")
        origin_id, target_id = _plain_id(raw.get("origin_id")), _plain_id(raw.get("target_id"))
        if type(ident) is int and type(oslot) is int and type(tslot) is int and origin_id and target_id:
            ltype = raw.get("type")
            return Link(ident, origin_id, oslot, target_id, tslot, ltype if type(ltype) is str else _slot_type(ltype))
    path = f"{graph_path}.links[{index}]"
    if isinstance(raw, list):
        if len(raw) < 5:
            raise r.fail(path, f"link has {len(raw)} fields", "[id, origin_id, origin_slot, target_id, target_slot, type]")
        ident, origin, oslot, target, tslot = raw[:5]
        ltype = raw[5] if len(raw) > 5 else ""
        return Link(
            r.int_(ident, f"{path}[0]"), r.node_id(origin, f"{path}[1]"), r.int_(oslot, f"{path}[2]"),
            r.node_id(target, f"{path}[3]"), r.int_(tslot, f"{path}[4]"), _slot_type(ltype),
        )
    obj = r.obj(raw, path)
    return Link(
        r.int_(obj.get("id"), f"{path}.id"),
        r.node_id(obj.get("origin_id"), f"{path}.origin_id"),
        r.int_(obj.get("origin_slot"), f"{path}.origin_slot"),
        r.node_id(obj.get("target_id"), f"{path}.target_id"),
        r.int_(obj.get("target_slot"), f"{path}.target_slot"),
        _slot_type(obj.get("type")),
    )


def _parse_input(r: _Reader, slot: Any, node_path: str, index: int) -> InputSlot:
    if type(slot) is dict:
        name, link, stype, widget = slot.get("name"), slot.get("link"), slot.get("type"), slot.get("widget")
        if type(name) is str and (link is None or type(link) is int):
            widget_name = widget.get("name") if type(widget) is dict else None
            return InputSlot(name, stype if type(stype) is str else _slot_type(stype), link,
                             widget_name if type(widget_name) is str else None)
    path = f"{node_path}.inputs[{index}]"
    s = r.obj(slot, path)
    widget = s.get("widget")
    widget_name = widget.get("name") if isinstance(widget, dict) and isinstance(widget.get("name"), str) else None
    return InputSlot(r.str_(s.get("name"), f"{path}.name"), _slot_type(s.get("type")),
                     r.opt_int(s.get("link"), f"{path}.link"), widget_name)


def _parse_output(r: _Reader, slot: Any, node_path: str, index: int) -> OutputSlot:
    s = slot if type(slot) is dict else r.obj(slot, f"{node_path}.outputs[{index}]")
    raw_links = s.get("links") or []
    links: list[int] | None = None
    if type(raw_links) is list:
        for v in raw_links:
            if type(v) is not int:
                break
        else:
            links = raw_links  # read-only here: the parsed list itself will do
    if links is None:
        path = f"{node_path}.outputs[{index}]"
        links = [r.int_(v, f"{path}.links[{j}]") for j, v in enumerate(r.arr(raw_links, f"{path}.links"))]
    name, stype = s.get("name"), s.get("type")
    return OutputSlot(name if isinstance(name, str) else "", stype if type(stype) is str else _slot_type(stype), links)


def _parse_node(r: _Reader, raw: Any, path: str) -> Node:
    obj = raw if type(raw) is dict else r.obj(raw, path)
    ident = obj.get("id")
    ident = str(ident) if type(ident) is int else ident if type(ident) is str and ident else r.node_id(ident, f"{path}.id")
    ntype = obj.get("type")
    if type(ntype) is not str:
        ntype = r.str_(ntype, f"{path}.type")
    mode = obj.get("mode", 0)
    mode = 0 if mode is None else mode if type(mode) is int else r.int_(mode, f"{path}.mode")
    title = obj.get("title")
    if title is not None and not isinstance(title, str):
        title = str(title)
    raw_inputs = obj.get("inputs") or []
    raw_outputs = obj.get("outputs") or []
    if type(raw_inputs) is not list:
        r.arr(raw_inputs, f"{path}.inputs")
    if type(raw_outputs) is not list:
        r.arr(raw_outputs, f"{path}.outputs")
    # The usual slot shapes are read inline (a call per slot was a fifth of parsing); any
    # other shape goes through the checks that name the bad field.
    # The index of a slot, needed only to name a bad one, is how many were read before it.
    inputs: list[InputSlot] = []
    for slot in raw_inputs:
        if type(slot) is dict:
            name, link, stype, widget = slot.get("name"), slot.get("link"), slot.get("type"), slot.get("widget")
            if type(name) is str and (link is None or type(link) is int) and type(stype) is str:
                if widget is None:
                    inputs.append(InputSlot(name, stype, link))
                    continue
                widget_name = widget.get("name") if type(widget) is dict else None
                if type(widget_name) is str:
                    inputs.append(InputSlot(name, stype, link, widget_name))
                    continue
        inputs.append(_parse_input(r, slot, path, len(inputs)))
    outputs: list[OutputSlot] = []
    for slot in raw_outputs:
        if type(slot) is dict:
            name, stype, links = slot.get("name"), slot.get("type"), slot.get("links")
            if type(name) is str and type(stype) is str and (links is None or (type(links) is list and {
                    *map(type, links)} <= _ONLY_INT)):
                outputs.append(OutputSlot(name, stype, links or []))
                continue
        outputs.append(_parse_output(r, slot, path, len(outputs)))
    values = obj.get("widgets_values")
    if values is not None and not isinstance(values, (list, dict)):
        raise r.fail(f"{path}.widgets_values", f"found {json_kind(values)}", "an array or an object")
    props = obj.get("properties")
    props = props if isinstance(props, dict) else {}
    return Node(ident, ntype, mode, title, inputs, outputs, values, props, path, obj)


def _parse_io(r: _Reader, raw: Any, path: str) -> list[SubgraphSlot]:
    slots = []
    for i, item in enumerate(r.arr(raw or [], path)):
        if type(item) is dict:
            # The usual shape skips the per-id checks (and their paths) below.
            raw_ids, name, stype = item.get("linkIds") or [], item.get("name"), item.get("type")
            if type(raw_ids) is list and {*map(type, raw_ids)} <= _ONLY_INT:
                slots.append(SubgraphSlot(name if isinstance(name, str) else "",
                                          stype if type(stype) is str else _slot_type(stype), list(raw_ids)))
                continue
        spath = f"{path}[{i}]"
        s = r.obj(item, spath)
        ids = [r.int_(v, f"{spath}.linkIds[{j}]") for j, v in enumerate(r.arr(s.get("linkIds") or [], f"{spath}.linkIds"))]
        name = s.get("name")
        slots.append(SubgraphSlot(name if isinstance(name, str) else "", _slot_type(s.get("type")), ids))
    return slots


def _parse_graph(r: _Reader, obj: dict[str, Any], path: str) -> Graph:
    nodes: dict[str, Node] = {}
    for i, raw in enumerate(r.arr(obj.get("nodes"), f"{path}.nodes")):
        node = _parse_node(r, raw, f"{path}.nodes[{i}]")
        nodes[node.id] = node
    links: dict[int, Link] = {}
    raw_links = obj.get("links")
    for i, raw in enumerate(r.arr(raw_links if raw_links is not None else [], f"{path}.links")):
        if raw is None:  # deleted links are sometimes left as null holes
            continue
        if type(raw) is list and len(raw) == 6:
            # The editor's own shape, [id, origin, slot, target, slot, type] with integer node ids:
            # by far the most links, so they skip even the general fast path.
            ident, origin, oslot, target, tslot, ltype = raw
            if (type(ident) is int and type(origin) is int and type(oslot) is int and type(target) is int
                    and type(tslot) is int and type(ltype) is str):
                links[ident] = Link(ident, str(origin), oslot, str(target), tslot, ltype)
                continue
        elif type(raw) is dict:
            # Subgraph definitions keep links as objects, most of a file's links in newer templates.
            ident, origin, oslot = raw.get("id"), raw.get("origin_id"), raw.get("origin_slot")
            target, tslot, ltype = raw.get("target_id"), raw.get("target_slot"), raw.get("type")
            if (type(ident) is int and type(origin) is int and type(oslot) is int and type(target) is int
                    and type(tslot) is int and type(ltype) is str):
                links[ident] = Link(ident, str(origin), oslot, str(target), tslot, ltype)
                continue
        link = _parse_link(r, raw, path, i)
        links[link.id] = link
    return Graph(nodes, links, path)


@without_cyclic_gc
def parse_ui(data: Any, file: str | None = None) -> UIWorkflow:
    """Parse a UI-format workflow dict; raise :class:`WorkflowError` on any bad shape."""
    r = _Reader(file)
    obj = r.obj(data, "$")
    root = _parse_graph(r, obj, "$")
    subgraphs: dict[str, Graph] = {}
    definitions = obj.get("definitions")
    if definitions is not None:
        defs = r.obj(definitions, "$.definitions")
        for i, raw in enumerate(r.arr(defs.get("subgraphs") or [], "$.definitions.subgraphs")):
            path = f"$.definitions.subgraphs[{i}]"
            sg = r.obj(raw, path)
            graph = _parse_graph(r, sg, path)
            graph.id = r.str_(sg.get("id"), f"{path}.id")
            name = sg.get("name")
            graph.name = name if isinstance(name, str) else graph.id
            graph.inputs = _parse_io(r, sg.get("inputs"), f"{path}.inputs")
            graph.outputs = _parse_io(r, sg.get("outputs"), f"{path}.outputs")
            subgraphs[graph.id] = graph
    models_raw = obj.get("models")
    models = [m for m in models_raw if isinstance(m, dict)] if isinstance(models_raw, list) else []
    raw_extra = obj.get("extra")
    return UIWorkflow(root, subgraphs, models, raw_extra if isinstance(raw_extra, dict) else {})
