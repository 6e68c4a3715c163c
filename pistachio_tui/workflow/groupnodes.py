"""Legacy group nodes (``extra.groupNodes``, node types ``workflow>NAME``) as subgraphs.

Before subgraphs, the editor let people fold nodes into a "group node" whose
definition lives in ``extra.groupNodes`` and whose instance carries every inner
widget value in one flat ``widgets_values`` list. The editor executes a group
node as its inner nodes with ids ``"<instance id>:<inner index>"`` — exactly
what subgraph flattening produces — so each instance is rewritten here into a
private subgraph definition and the ordinary converter does the rest.

Exposure rules follow the editor: an inner input is a group input unless an
inner link feeds it; an inner output is a group output unless it is linked
inside the group and not listed in ``external``.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from pistachio_tui.workflow.node_widgets import widget_layout
from pistachio_tui.workflow.uigraph import (
    SUBGRAPH_INPUT_ID,
    SUBGRAPH_OUTPUT_ID,
    Graph,
    InputSlot,
    Link,
    Node,
    OutputSlot,
    SubgraphSlot,
    UIWorkflow,
)

_PREFIXES = ("workflow>", "workflow/")


def group_name(node_type: str) -> str | None:
    """``NAME`` of a ``workflow>NAME`` node type, else ``None``."""
    for prefix in _PREFIXES:
        if node_type.startswith(prefix):
            return node_type[len(prefix):]
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _inner_nodes(definition: dict[str, Any], path: str) -> list[Node]:
    nodes = []
    raw_nodes = definition.get("nodes")
    for position, raw in enumerate(raw_nodes if isinstance(raw_nodes, list) else []):
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            continue
        index = _int(raw.get("index"))
        index = position if index is None else index
        inputs = [
            InputSlot(str(s.get("name", "")), str(s.get("type", "")), None,
                      (s.get("widget") or {}).get("name") if isinstance(s.get("widget"), dict) else None)
            for s in raw.get("inputs") or [] if isinstance(s, dict)
        ]
        outputs = [OutputSlot(str(s.get("name", "")), str(s.get("type", ""))) for s in raw.get("outputs") or []
                   if isinstance(s, dict)]
        title = raw.get("title") if isinstance(raw.get("title"), str) else None
        mode = _int(raw.get("mode")) or 0
        values = raw.get("widgets_values") if isinstance(raw.get("widgets_values"), (list, dict)) else None
        raw_props = raw.get("properties")
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        nodes.append(Node(str(index), raw["type"], mode, title, inputs, outputs, copy.deepcopy(values), props,
                          f"{path}.nodes[{position}]", raw))
    return sorted(nodes, key=lambda n: int(n.id))


def _widget_count(node: Node, object_info: dict[str, Any]) -> int:
    definition = object_info.get(node.type)
    if isinstance(definition, dict):
        return len(widget_layout(node.type, definition, []))
    return len(node.widgets_values) if isinstance(node.widgets_values, list) else 0


def _build(instance: Node, definition: dict[str, Any], object_info: dict[str, Any], path: str,
           warnings: list[str]) -> Graph:
    nodes = _inner_nodes(definition, path)
    by_id = {n.id: n for n in nodes}
    links: dict[int, Link] = {}
    internal_targets: set[tuple[str, int]] = set()
    internal_sources: set[tuple[str, int]] = set()
    for raw in definition.get("links") or []:
        if not isinstance(raw, list) or len(raw) < 4:
            continue
        origin, oslot, target, tslot = (_int(v) for v in raw[:4])
        if origin is None or oslot is None or target is None or tslot is None:
            continue
        if str(origin) not in by_id or str(target) not in by_id:
            continue
        inputs = by_id[str(target)].inputs
        if tslot >= len(inputs):
            continue
        link = Link(len(links) + 1, str(origin), oslot, str(target), tslot, str(raw[5]) if len(raw) > 5 else "")
        links[link.id] = link
        inputs[tslot].link = link.id
        internal_targets.add((link.target_id, tslot))
        internal_sources.add((link.origin_id, oslot))
    external = {(str(e[0]), e[1]) for e in definition.get("external") or []
                if isinstance(e, list) and len(e) >= 2 and _int(e[0]) is not None and _int(e[1]) is not None}

    graph = Graph({n.id: n for n in nodes}, links, path, id=f"{instance.type}#{instance.id}", name=instance.type)
    exposed_inputs = [(n, i) for n in nodes for i, _ in enumerate(n.inputs) if (n.id, i) not in internal_targets]
    if len(exposed_inputs) != len(instance.inputs):
        warnings.append(f"group node {instance.id}: {len(instance.inputs)} inputs saved, "
                        f"{len(exposed_inputs)} expected from its definition")
    for k, (node, i) in enumerate(exposed_inputs):
        name = instance.inputs[k].name if k < len(instance.inputs) else node.inputs[i].name
        link = Link(len(links) + 1, SUBGRAPH_INPUT_ID, k, node.id, i, node.inputs[i].type)
        links[link.id] = link
        node.inputs[i].link = link.id
        graph.inputs.append(SubgraphSlot(name, node.inputs[i].type, [link.id]))
    for node in nodes:
        for slot, out in enumerate(node.outputs):
            if (node.id, slot) in internal_sources and (node.id, slot) not in external:
                continue
            link = Link(len(links) + 1, node.id, slot, SUBGRAPH_OUTPUT_ID, len(graph.outputs), out.type)
            links[link.id] = link
            graph.outputs.append(SubgraphSlot(out.name, out.type, [link.id]))

    values = list(instance.widgets_values) if isinstance(instance.widgets_values, list) else []
    cursor = 0
    for node in nodes:
        count = _widget_count(node, object_info)
        own = list(node.widgets_values) if isinstance(node.widgets_values, list) else []
        taken = values[cursor:cursor + count]
        node.widgets_values = taken + own[len(taken):]
        cursor += count
    return graph


def expand_group_nodes(wf: UIWorkflow, object_info: dict[str, Any], warnings: list[str]) -> UIWorkflow:
    """A copy of ``wf`` whose group-node instances point at generated subgraph definitions."""
    definitions = wf.extra.get("groupNodes")
    if not isinstance(definitions, dict):
        return wf
    subgraphs = dict(wf.subgraphs)
    nodes = dict(wf.root.nodes)
    for node_id, node in wf.root.nodes.items():
        name = group_name(node.type)
        definition = definitions.get(name) if name is not None else None
        if not isinstance(definition, dict):
            continue
        graph = _build(node, definition, object_info, f"$.extra.groupNodes[{name!r}]", warnings)
        subgraphs[graph.id] = graph
        nodes[node_id] = replace(node, type=graph.id)
    return UIWorkflow(replace(wf.root, nodes=nodes), subgraphs, wf.models, wf.extra)
