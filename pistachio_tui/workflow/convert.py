"""UI workflow → API prompt, the way the official web frontend (1.35.9) does it.

The frontend flattens subgraphs into execution nodes whose ids join the path
of subgraph instances (``"57:12"``), follows every input link through
bypassed nodes (first input of a matching type), reroutes and subgraph
boundaries to the real producing node, drops muted and virtual nodes, and
names widget values by the widget list it builds from ``object_info``. Each
rule here mirrors one of those steps; the oracle tests hold it to the
frontend's exact output.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pistachio_tui.workflow.dynprompts import process_dynamic_prompt
from pistachio_tui.workflow.errors import WorkflowError
from pistachio_tui.workflow.frontend_titles import frontend_title
from pistachio_tui.workflow.gcpause import without_cyclic_gc
from pistachio_tui.workflow.groupnodes import expand_group_nodes
from pistachio_tui.workflow.load import Workflow, load_workflow
from pistachio_tui.workflow.node_widgets import TYPED_VALUE_WIDGETS, WidgetSpec, prompt_value, widget_values
from pistachio_tui.workflow.textreplace import SAVE_NODE_TYPES, apply_text_replacements
from pistachio_tui.workflow.uigraph import (
    MODE_BYPASS,
    MODE_NEVER,
    SUBGRAPH_INPUT_ID,
    Graph,
    InputSlot,
    Node,
    UIWorkflow,
    parse_ui,
)

#: Editor-only node types: they shape the graph but never reach the server.
VIRTUAL_NODE_TYPES = frozenset({"Reroute", "PrimitiveNode", "Note", "MarkdownNote"})
#: What the editor names the single widget of a node whose type it does not know.
UNKNOWN_WIDGET = "UNKNOWN"
_PLAIN_WIDGET = WidgetSpec("")
#: PrimitiveNode property that turns on ``%…%`` expansion of its value.
REPLACE_PROPERTY = "Run widget replace on values"


@dataclass
class ConversionResult:
    """The API prompt plus what could not be converted faithfully."""

    prompt: dict[str, dict[str, Any]]
    unknown_types: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Promoted:
    """An input resolved to the value of a widget a subgraph instance shows, not to a link."""

    value: Any


#: What an input resolves to: a link ``[source execution id, output index]`` or a promoted value.
_Resolved = list[Any] | _Promoted


@dataclass(slots=True)
class _Exec:
    """One executable node: a node of some graph at one place in the subgraph nesting."""

    exec_id: str
    node: Node
    graph: Graph
    path: tuple[str, ...]
    host: "_Exec | None"
    subgraph: bool = False
    #: Never sent to the server (a subgraph instance, or an editor-only node the server does not know).
    virtual: bool = False
    #: An ordinary node whose outputs are its own: active, neither a subgraph nor virtual.
    plain: bool = False


class _Recursion(Exception):
    pass


#: A slot already followed while resolving one input: (graph id, node id, is an input, slot).
_Visit = tuple[str, str, bool, int]


def is_valid_connection(a: str, b: str) -> bool:
    """The editor's slot type compatibility: ``*``/empty match anything, comma lists overlap."""
    if a in ("", "*", "0") or b in ("", "*", "0") or a == b:
        return True
    a, b = a.lower(), b.lower()
    if "," not in a and "," not in b:
        return a == b
    return any(x == y or x in ("", "*") or y in ("", "*") for x in a.split(",") for y in b.split(","))


class _Converter:
    def __init__(self, wf: UIWorkflow, object_info: dict[str, Any], rng: random.Random,
                 now: datetime | None = None) -> None:
        self.wf = wf
        self.object_info = object_info
        self.rng = rng
        self.now = now or datetime.now()
        self.warnings: list[str] = []
        self.execs: dict[str, _Exec] = {}
        self._widget_cache: dict[int, list[tuple[WidgetSpec, Any]]] = {}
        self._overrides: dict[int, dict[str, Any]] = {}
        self._promoted: dict[str, list[str]] = {}

    # -- node kinds -------------------------------------------------------
    def is_subgraph(self, node: Node) -> bool:
        return node.type in self.wf.subgraphs

    def node_def(self, node: Node) -> dict[str, Any] | None:
        definition = self.object_info.get(node.type)
        return definition if isinstance(definition, dict) else None

    def is_virtual(self, node: Node) -> bool:
        return self.is_subgraph(node) or (node.type in VIRTUAL_NODE_TYPES and self.node_def(node) is None)

    # -- flattening -------------------------------------------------------
    def expand(self, graph: Graph, path: tuple[str, ...], host: _Exec | None, depth: int = 0) -> None:
        if depth > 32:
            raise WorkflowError("subgraphs nest more than 32 levels deep (a subgraph contains itself?)", path=graph.path)
        subgraphs = self.wf.subgraphs
        for node in graph.nodes.values():
            exec_id = ":".join((*path, node.id)) if path else node.id
            subgraph = node.type in subgraphs
            virtual = subgraph or (node.type in VIRTUAL_NODE_TYPES and self.node_def(node) is None)
            plain = not virtual and node.mode not in (MODE_NEVER, MODE_BYPASS)
            dto = _Exec(exec_id, node, graph, path, host, subgraph, virtual, plain)
            # A muted or bypassed instance on the root graph runs none of its inner nodes (frontend
            # 1.38+); one nested inside another subgraph is expanded whatever its mode, as there.
            skipped = depth == 0 and node.mode in (MODE_NEVER, MODE_BYPASS)
            if subgraph and not skipped:
                self.expand(self.wf.subgraphs[node.type], (*path, node.id), dto, depth + 1)
            self.execs[exec_id] = dto

    # -- widgets ----------------------------------------------------------
    def widgets(self, node: Node) -> list[tuple[WidgetSpec, Any]]:
        """``(widget, value)`` pairs of a real node, values from ``widgets_values``."""
        key = id(node)
        cached = self._widget_cache.get(key)
        if cached is not None:
            return cached
        definition = self.object_info.get(node.type)  # node_def, inline: called for every node
        result: list[tuple[WidgetSpec, Any]] = []
        if isinstance(definition, dict):
            result = widget_values(node.type, definition, node.widgets_values)
        elif not self.is_virtual(node):
            values = node.widgets_values
            seq = list(values.values()) if isinstance(values, dict) else list(values or [])
            if seq:
                last = seq[-1]
                result = [(WidgetSpec(UNKNOWN_WIDGET), "null" if last is None else last)]
        overrides = self._overrides.get(key)
        if overrides:
            result = [(w, overrides.get(w.name, v)) for w, v in result]
        self._widget_cache[key] = result
        return result

    def widget_value(self, node: Node, name: str) -> tuple[bool, Any]:
        """Whether ``node`` has a widget ``name`` (promoted ones included) and its value."""
        if self.is_subgraph(node):
            return self.promoted_widget(node, name)
        for widget, value in self.widgets(node):
            if widget.name == name:
                return True, value
        return False, None

    def promoted_widget(self, node: Node, input_name: str, depth: int = 0) -> tuple[bool, Any]:
        """The widget a subgraph instance shows for its input ``input_name``, if any."""
        if depth > 32:
            return False, None
        graph = self.wf.subgraphs[node.type]
        names = self.promoted_names(node, depth)
        if input_name not in names:
            return False, None
        slot = next(s for s in graph.inputs if s.name == input_name)
        found = self._saved_promoted_value(node, names, input_name)
        if found is not None:
            return True, found[0]
        inner = self._inner_widget(graph, slot.link_ids, depth)
        return True, inner[1] if inner else None

    def promoted_names(self, node: Node, depth: int = 0) -> list[str]:
        """Inputs of a subgraph instance that show a widget (they feed a widget inside)."""
        cached = self._promoted.get(node.type)
        if cached is None:
            self._promoted[node.type] = []  # a subgraph that contains itself promotes nothing
            graph = self.wf.subgraphs[node.type]
            cached = [slot.name for slot in graph.inputs if self._inner_widget(graph, slot.link_ids, depth) is not None]
            self._promoted[node.type] = cached
        return cached

    def _saved_promoted_value(self, node: Node, names: list[str], input_name: str) -> tuple[Any] | None:
        values = node.widgets_values
        if isinstance(values, dict):
            return (values[input_name],) if input_name in values else None
        values = list(values or [])
        proxies = node.properties.get("proxyWidgets")
        if isinstance(proxies, list) and proxies:
            # Newer editors save values in proxy-widget order; "-1" marks the instance's own inputs.
            for i, entry in enumerate(proxies):
                if (isinstance(entry, list) and len(entry) == 2 and str(entry[0]) == "-1"
                        and entry[1] == input_name and i < len(values)):
                    return (values[i],)
            return None
        index = names.index(input_name)
        return (values[index],) if index < len(values) else None

    def _inner_widget(self, graph: Graph, link_ids: list[int], depth: int) -> tuple[bool, Any] | None:
        """The widget (found, value) the first inner target of a subgraph input has, if any."""
        link = graph.links.get(link_ids[0]) if link_ids else None
        if link is None:
            return None
        target = graph.nodes.get(link.target_id)
        if target is None or link.target_slot >= len(target.inputs):
            return None
        slot = target.inputs[link.target_slot]
        if self.is_subgraph(target):
            found = self.promoted_widget(target, slot.name, depth + 1)
        elif slot.widget is None and self.node_def(target) is None:
            return None
        else:
            found = self.widget_value(target, slot.widget or slot.name)
        return found if found[0] else None

    def apply_primitives(self) -> None:
        """Push every PrimitiveNode's value into the widgets it feeds (the editor's applyToGraph)."""
        graphs = [self.wf.root, *self.wf.subgraphs.values()]
        for graph in graphs:
            for node in graph.nodes.values():
                if node.type != "PrimitiveNode" or self.node_def(node) is not None:
                    continue
                values = node.widgets_values
                seq = list(values.values()) if isinstance(values, dict) else list(values or [])
                if not seq or not node.outputs:
                    continue
                value = seq[0]
                if value and isinstance(value, str) and node.properties.get(REPLACE_PROPERTY):
                    value = self.replace_text(value)
                for link_id in node.outputs[0].links:
                    link = graph.links.get(link_id)
                    target = graph.nodes.get(link.target_id) if link is not None else None
                    if link is None or target is None or link.target_slot >= len(target.inputs):
                        continue
                    widget_name = target.inputs[link.target_slot].widget
                    if widget_name:
                        self._overrides.setdefault(id(target), {})[widget_name] = value
        # Expanding %Node.widget% above may have cached values from before later overrides.
        self._widget_cache.clear()

    def replace_text(self, text: str) -> str:
        """``%date:…%`` / ``%Node.widget%`` expansion against the root graph's nodes."""
        def lookup(name: str, widget: str) -> tuple[bool, Any]:
            nodes = list(self.wf.root.nodes.values())
            matches = [n for n in nodes if self._search_name(n) == name] or [n for n in nodes if self.title(n) == name]
            return self.widget_value(matches[0], widget) if matches else (False, None)

        return apply_text_replacements(text, lookup, self.now)

    def _search_name(self, node: Node) -> Any:
        if "Node name for S&R" in node.properties:
            return node.properties["Node name for S&R"]
        # The editor gives every node built from a server definition this property, save nodes aside.
        return node.type if self.node_def(node) is not None and node.type not in SAVE_NODE_TYPES else None

    # -- link resolution --------------------------------------------------
    def resolve_input(self, dto: _Exec, slot: int, visited: set[_Visit] | None = None,
                      type_: str | None = None) -> _Resolved | None:
        if slot < 0 or slot >= len(dto.node.inputs):
            return None
        inp = dto.node.inputs[slot]
        if inp.link is None:
            return None
        link = dto.graph.links.get(inp.link)
        if link is None:
            self.warnings.append(f"node {dto.exec_id} input {inp.name!r}: link {inp.link} does not exist")
            return None
        host = dto.host if link.origin_id == SUBGRAPH_INPUT_ID else None
        if host is not None:
            return self._resolve_from_host(dto, host, link.origin_slot, _guard(visited, dto, slot, True))
        origin = dto.graph.nodes.get(link.origin_id)
        if origin is None:
            self.warnings.append(f"node {dto.exec_id} input {inp.name!r}: source node {link.origin_id} does not exist")
            return None
        origin_dto = self.execs.get(":".join((*dto.path, origin.id)) if dto.path else origin.id)
        if origin_dto is None:
            return None
        if origin_dto.plain:
            # Its output is the answer: nothing is followed, so there is no loop to guard against.
            return [origin_dto.exec_id, link.origin_slot]
        return self.resolve_output(origin_dto, link.origin_slot, type_ or inp.type, _guard(visited, dto, slot, True))

    def _resolve_from_host(self, dto: _Exec, host: _Exec, def_slot: int, visited: set[_Visit]) -> _Resolved | None:
        graph = self.wf.subgraphs[host.node.type]
        if def_slot >= len(graph.inputs):
            return None
        name = graph.inputs[def_slot].name
        index = _slot_index(host.node.inputs, name, def_slot)
        if index is None or host.node.inputs[index].link is None:
            has_widget, value = self.promoted_widget(host.node, name)
            if not has_widget:
                return None
            return _Promoted(value)
        return self.resolve_input(host, index, visited)

    def resolve_output(self, dto: _Exec, slot: int, type_: str, visited: set[_Visit]) -> _Resolved | None:
        _guard(visited, dto, slot, False)
        node = dto.node
        if node.mode == MODE_NEVER:
            return None
        if node.mode == MODE_BYPASS:
            index = self._bypass_slot(node, slot, type_)
            return None if index < 0 else self.resolve_input(dto, index, visited)
        if dto.subgraph:
            return self._resolve_subgraph_output(dto, slot, type_, visited)
        if dto.virtual:
            if slot < len(node.inputs):
                return self.resolve_input(dto, slot, visited, type_)
            return None
        return [dto.exec_id, slot]

    def _bypass_slot(self, node: Node, slot: int, type_: str) -> int:
        inputs = node.inputs
        if type_ in ("*", ""):
            return slot if len(inputs) > slot else 0
        out_type = node.outputs[slot].type if slot < len(node.outputs) else ""
        if slot < len(inputs):
            opposite = inputs[slot].type
            if is_valid_connection(opposite, out_type) and is_valid_connection(opposite, type_):
                return slot
        for i, inp in enumerate(inputs):
            if inp.type == type_:
                return i
        for i, inp in enumerate(inputs):
            if is_valid_connection(inp.type, out_type) and is_valid_connection(inp.type, type_):
                return i
        return -1

    def _resolve_subgraph_output(self, dto: _Exec, slot: int, type_: str, visited: set[_Visit]) -> _Resolved | None:
        graph = self.wf.subgraphs[dto.node.type]
        if slot >= len(graph.outputs) or not graph.outputs[slot].link_ids:
            return None
        link = graph.links.get(graph.outputs[slot].link_ids[0])
        if link is None or link.origin_id == SUBGRAPH_INPUT_ID:
            return None
        inner = self.execs.get(":".join((*dto.path, dto.node.id, link.origin_id)))
        if inner is None:
            return None
        return self.resolve_output(inner, link.origin_slot, type_, visited)

    # -- the prompt -------------------------------------------------------
    def title(self, node: Node) -> str | None:
        return self._title(node, self.node_def(node))

    def _title(self, node: Node, definition: dict[str, Any] | None) -> str | None:
        if node.title is not None:
            return node.title
        if definition is None:
            return None
        return frontend_title(node.type) or definition.get("display_name") or definition.get("name") or node.type

    def node_inputs(self, dto: _Exec, links: list[tuple[dict[str, Any], str, list[Any]]]) -> dict[str, Any]:
        """The node's prompt inputs; each link it holds is also noted in ``links`` (inputs, name, link)."""
        inputs: dict[str, Any] = {}
        widgets = self.widgets(dto.node)
        for widget, value in widgets:
            if not widget.serialize:
                continue
            if widget.computed:
                value = ""
            elif widget.dynamic_prompts and isinstance(value, str):
                value = process_dynamic_prompt(value, self.rng)
            elif widget.name == "filename_prefix" and dto.node.type in SAVE_NODE_TYPES and isinstance(value, str):
                value = self.replace_text(value)
            # Most values go in as they are; prompt_value decides for the few it may wrap.
            inputs[widget.name] = (prompt_value(widget, value) if widget.type in TYPED_VALUE_WIDGETS
                                   or isinstance(value, list) else value)
        for i, inp in enumerate(dto.node.inputs):
            if inp.link is None:
                continue
            try:
                resolved = self.resolve_input(dto, i)
            except _Recursion as exc:
                self.warnings.append(str(exc))
                continue
            if resolved is None:
                continue
            if isinstance(resolved, _Promoted):
                # A promoted widget's value is wrapped by list-ness alone, without its type.
                inputs[inp.name] = prompt_value(_PLAIN_WIDGET, resolved.value)
            else:
                inputs[inp.name] = resolved
                links.append((inputs, inp.name, resolved))
        return inputs

    def run(self) -> ConversionResult:
        self.apply_primitives()
        self.expand(self.wf.root, (), None)
        prompt: dict[str, dict[str, Any]] = {}
        unknown: dict[str, None] = {}
        links: list[tuple[dict[str, Any], str, list[Any]]] = []
        for exec_id, dto in self.execs.items():
            if not dto.plain:
                continue
            node = dto.node
            entry: dict[str, Any] = {"inputs": self.node_inputs(dto, links)}
            definition = self.node_def(node)
            if definition is not None:
                entry["class_type"] = node.type
            else:
                unknown[node.type] = None
            title = self._title(node, definition)
            entry["_meta"] = {"title": title} if title is not None else {}
            prompt[exec_id] = entry
        # Links into nodes that are not sent (muted, or whose source was dropped) go, as in the editor.
        for inputs, name, link in links:
            if link[0] not in prompt and inputs.get(name) is link:
                del inputs[name]
        return ConversionResult(prompt, list(unknown), self.warnings)


def _guard(visited: set[_Visit] | None, dto: _Exec, slot: int, is_input: bool) -> set[_Visit]:
    """Record that one slot is being followed; a slot met twice in one resolution is a loop."""
    visited = set() if visited is None else visited
    key = (dto.graph.id, dto.node.id, is_input, slot)
    if key in visited:
        raise _Recursion(f"circular link at node {dto.exec_id} {'input' if is_input else 'output'} {slot}")
    visited.add(key)
    return visited


def _slot_index(inputs: list[InputSlot], name: str, fallback: int) -> int | None:
    for i, slot in enumerate(inputs):
        if slot.name == name:
            return i
    return fallback if fallback < len(inputs) and inputs[fallback].name == name else None


@without_cyclic_gc
def ui_to_api(
    workflow: UIWorkflow | dict[str, Any],
    object_info: dict[str, Any],
    *,
    rng: random.Random | None = None,
    file: str | None = None,
    now: datetime | None = None,
) -> ConversionResult:
    """Convert a UI workflow (parsed or raw dict) to the API prompt the frontend would queue.

    ``rng`` picks the options of ``{a|b}`` dynamic prompts (random by default);
    ``now`` is the time ``%date:…%`` in file name prefixes expands to.
    Unknown node types are kept without ``class_type`` (as the frontend does)
    and listed in ``unknown_types``.
    """
    wf = workflow if isinstance(workflow, UIWorkflow) else parse_ui(workflow, file)
    try:
        warnings: list[str] = []
        converter = _Converter(expand_group_nodes(wf, object_info, warnings), object_info, rng or random.Random(), now)
        converter.warnings.extend(warnings)
        return converter.run()
    except WorkflowError as exc:
        raise exc.with_file(file) from None
    except (RecursionError, TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise WorkflowError(f"cannot convert this workflow: {exc}", file=file) from exc


def promoted_inputs(workflow: UIWorkflow, node: Node, object_info: dict[str, Any]) -> list[str]:
    """Names of a subgraph instance's inputs that carry a promoted widget, in widget order."""
    return _Converter(workflow, object_info, random.Random(0)).promoted_names(node)


def to_api(workflow: "Workflow", object_info: dict[str, Any], *, rng: random.Random | None = None,
           now: datetime | None = None) -> ConversionResult:
    """The API prompt of a loaded workflow: converted from its UI graph, or its own prompt.

    For a UI workflow the graph is always converted (an image's embedded
    prompt may be stale after edits); an API workflow is returned as a copy.
    """
    if workflow.format == "api" and workflow.api is not None:
        unknown = sorted({n["class_type"] for n in workflow.api.values() if n.get("class_type") not in object_info})
        return ConversionResult(copy.deepcopy(workflow.api), unknown, [])
    return ui_to_api(workflow.graph, object_info, rng=rng, file=workflow.source, now=now)


def load_prompt_for_run(path: Path | str | bytes, object_info: dict[str, Any]) -> dict[str, Any]:
    """Any workflow file as the API prompt to queue.

    An image's embedded prompt is used as is (it is what the server already
    ran); a UI graph is converted like the web editor would.
    """
    workflow = load_workflow(path)
    if workflow.api is not None:
        return workflow.api
    return to_api(workflow, object_info).prompt
