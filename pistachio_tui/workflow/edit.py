"""Find and change the parameters people tweak: prompt text, seed, steps, cfg, size, LoRA strength.

Works on API prompts (``find_params`` / ``set_param``) and on UI workflows
(``find_ui_params`` / ``set_ui_param``), where the change is written into the
saved ``widgets_values`` — of the node itself, of the PrimitiveNode feeding
it, or of the subgraph instance that promotes the widget — so a saved file
keeps it. Prompt roles (positive/negative) come from the graph: which text
encoder feeds a sampler's ``positive`` or ``negative`` input.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pistachio_tui.workflow.convert import promoted_inputs, to_api
from pistachio_tui.workflow.errors import WorkflowError
from pistachio_tui.workflow.load import Workflow
from pistachio_tui.workflow.node_widgets import widget_layout
from pistachio_tui.workflow.seeds import SEED_MAX, SeedMode
from pistachio_tui.workflow.uigraph import SUBGRAPH_INPUT_ID, Graph, Node

#: input name → parameter kind, for inputs whose meaning does not depend on the node.
_KIND_BY_INPUT = {
    "seed": "seed", "noise_seed": "seed", "steps": "steps", "cfg": "cfg", "sampler_name": "sampler",
    "scheduler": "scheduler", "denoise": "denoise", "width": "width", "height": "height",
    "batch_size": "batch_size", "length": "length",
}
#: Param kinds that name a file on the server (a model, an input image), set as typed.
FILE_KINDS = ("model", "image")
_LORA_KINDS = {"strength_model": "lora_strength_model", "strength_clip": "lora_strength_clip"}
_TEXT_INPUTS = ("text", "prompt", "clip_l", "t5xxl")
_NUMERIC_KINDS = {
    "seed": int, "steps": int, "width": int, "height": int, "batch_size": int, "length": int,
    "cfg": float, "denoise": float, "lora_strength_model": float, "lora_strength_clip": float,
}


@dataclass(frozen=True)
class Param:
    """One editable value: ``kind`` is what it means, ``name`` the input that holds it."""

    node_id: str
    class_type: str
    title: str
    name: str
    kind: str
    value: Any
    role: str | None = None  # "positive" / "negative" for prompt text


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def _prompt_roles(prompt: dict[str, Any]) -> dict[str, str]:
    """node id → "positive"/"negative" for nodes feeding a sampler's conditioning inputs."""
    roles: dict[str, str] = {}
    for role in ("negative", "positive"):  # positive wins when a node feeds both
        stack = [
            node["inputs"][role][0] for node in prompt.values()
            if _is_link((node.get("inputs") or {}).get(role))
        ]
        seen: set[str] = set()
        while stack:
            node_id = stack.pop()
            if node_id in seen or node_id not in prompt:
                continue
            seen.add(node_id)
            inputs = prompt[node_id].get("inputs") or {}
            if any(isinstance(inputs.get(t), str) for t in _TEXT_INPUTS):
                roles[node_id] = role
            stack.extend(v[0] for k, v in inputs.items() if _is_link(v) and k not in ("model", "vae", "clip"))
    return roles


def find_params(prompt: dict[str, Any]) -> list[Param]:
    """Every editable literal value of an API prompt, in node order."""
    roles = _prompt_roles(prompt)
    params: list[Param] = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict):
            continue
        class_type = str(node.get("class_type", ""))
        title = str((node.get("_meta") or {}).get("title") or class_type)
        for name, value in (node.get("inputs") or {}).items():
            if _is_link(value):
                continue
            kind = _kind(class_type, name, value, node_id in roles)
            if kind is not None:
                role = roles.get(node_id) if kind == "prompt" else None
                params.append(Param(node_id, class_type, title, name, kind, value, role))
    return params


def _kind(class_type: str, name: str, value: Any, feeds_sampler: bool) -> str | None:
    if name in _TEXT_INPUTS and isinstance(value, str) and (feeds_sampler or "TextEncode" in class_type):
        return "prompt"
    if "Lora" in class_type and name in _LORA_KINDS:
        return _LORA_KINDS[name]
    if name == "lora_name":
        return "lora"
    return _KIND_BY_INPUT.get(name)


def _matches(param: Param, what: str, node: str | None) -> bool:
    if what in ("positive", "negative"):
        if param.kind != "prompt" or param.role != what:
            return False
    elif what not in (param.kind, param.name):
        return False
    if node is None:
        return True
    lowered = node.lower()
    return node == param.node_id or lowered == param.title.lower() or lowered == param.class_type.lower()


def select_params(params: list[Param], what: str, node: str | None = None) -> list[Param]:
    """Params of a kind (``seed``, ``prompt``, ``positive``…) or input name, optionally on one node.

    ``node`` matches a node id, a title or a class type (case-insensitive).
    """
    return [p for p in params if _matches(p, what, node)]


def _coerce(kind: str, value: Any) -> Any:
    wanted = _NUMERIC_KINDS.get(kind)
    if wanted is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise WorkflowError(f"{kind} must be a number, got {value!r}", path=kind, expected="a number") from None
    if wanted is int:
        if number != int(number):
            raise WorkflowError(f"{kind} must be a whole number, got {value!r}", path=kind, expected="an integer")
        return int(number)
    return number


def next_seed(current: Any, mode: SeedMode, rng: random.Random | None = None) -> int:
    """The seed after a run: unchanged, a fresh random one, or one more (wrapping)."""
    if mode == "random":
        return (rng or random.Random()).randrange(SEED_MAX)
    base = int(current) if isinstance(current, (int, float)) and not isinstance(current, bool) else 0
    if mode == "increment":
        return (base + 1) % SEED_MAX
    return base


def _targets(params: list[Param], what: str, node: str | None) -> list[Param]:
    chosen = select_params(params, what, node)
    if not chosen:
        where = f" on node {node!r}" if node else ""
        raise WorkflowError(f"no editable {what!r}{where} in this workflow", path=what,
                            expected="one of: " + ", ".join(sorted({p.kind for p in params})))
    return chosen


def set_param(prompt: dict[str, Any], what: str, value: Any, *, node: str | None = None) -> list[Param]:
    """Set ``what`` (kind, input name, or ``positive``/``negative``) in an API prompt, in place.

    Returns the params changed, with their new values; raises
    :class:`WorkflowError` when nothing matches or the value has the wrong type.
    """
    changed = []
    for param in _targets(find_params(prompt), what, node):
        new = _coerce(param.kind, value)
        prompt[param.node_id]["inputs"][param.name] = new
        changed.append(Param(param.node_id, param.class_type, param.title, param.name, param.kind, new, param.role))
    return changed


def apply_edits(prompt: dict[str, Any], edits: Iterable[tuple[Param, str]]) -> dict[str, Any]:
    """A copy of ``prompt`` with each typed value written into its parameter; ``prompt`` is left as it was.

    ``edits`` pairs a :class:`Param` (from :func:`find_params`) with the text a
    person typed for it. Text equal to the saved value changes nothing, so an
    untouched ``1`` is not rewritten as ``1.0``. Raises :class:`WorkflowError`
    for a value of the wrong type, naming the input.
    """
    edited = copy.deepcopy(prompt)
    for param, typed in edits:
        if typed == str(param.value):
            continue
        if param.kind in FILE_KINDS:
            # A file name picked from the server's own list: nothing to convert or look up.
            edited[param.node_id]["inputs"][param.name] = typed
        else:
            set_param(edited, param.name, typed, node=param.node_id)
    return edited


def apply_seed_mode(prompt: dict[str, Any], mode: SeedMode, *, value: int | None = None,
                    node: str | None = None, rng: random.Random | None = None) -> list[Param]:
    """Fix every seed (to ``value`` if given), randomise it, or increment it — in place."""
    changed = []
    for param in _targets(find_params(prompt), "seed", node):
        new = _coerce("seed", value) if mode == "fixed" and value is not None else next_seed(param.value, mode, rng)
        prompt[param.node_id]["inputs"][param.name] = new
        changed.append(Param(param.node_id, param.class_type, param.title, param.name, "seed", new))
    return changed


# -- UI workflows ----------------------------------------------------------------------------------

def find_ui_params(workflow: Workflow, object_info: dict[str, Any]) -> list[Param]:
    """Editable values of a UI workflow, named by flattened node ids (``"57:12"`` inside subgraphs)."""
    return find_params(to_api(workflow, object_info, rng=random.Random(0)).prompt)


def _walk_path(workflow: Workflow, exec_id: str) -> list[tuple[Graph, Node]]:
    """The chain of (graph, node) from the root graph down to ``exec_id``'s node."""
    graph = workflow.graph.root
    chain: list[tuple[Graph, Node]] = []
    parts = exec_id.split(":")
    for depth, part in enumerate(parts):
        node = graph.nodes.get(part)
        if node is None:
            raise WorkflowError(f"no node {exec_id!r}", path=exec_id, expected="a node id of this workflow")
        chain.append((graph, node))
        if depth < len(parts) - 1:
            inner = workflow.graph.subgraphs.get(node.type)
            if inner is None:
                raise WorkflowError(f"node {part} is not a subgraph", path=exec_id)
            graph = inner
    return chain


def _write(raw: dict[str, Any], slot: int | str, value: Any) -> None:
    values = raw.get("widgets_values")
    if isinstance(slot, str):
        if not isinstance(values, dict):
            values = raw["widgets_values"] = {}
        values[slot] = value
        return
    if not isinstance(values, list):
        values = raw["widgets_values"] = []
    values.extend([None] * (slot + 1 - len(values)))
    values[slot] = value


def _write_widget(node: Node, name: str, value: Any, object_info: dict[str, Any]) -> bool:
    definition = object_info.get(node.type)
    if not isinstance(definition, dict):
        return False
    layout = widget_layout(node.type, definition, node.raw.get("widgets_values"))
    for index, item in enumerate(layout):
        if item.widget.name != name:
            continue
        slot = item.slot
        if slot is None:  # value not saved yet: its slot is its place in the widget list
            slot = name if isinstance(node.raw.get("widgets_values"), dict) else index
        _write(node.raw, slot, value)
        return True
    return False


def _write_promoted(host: Node, input_name: str, value: Any, workflow: Workflow, object_info: dict[str, Any]) -> bool:
    proxies = host.properties.get("proxyWidgets")
    if isinstance(proxies, list) and proxies:
        for i, entry in enumerate(proxies):
            if isinstance(entry, list) and len(entry) == 2 and str(entry[0]) == "-1" and entry[1] == input_name:
                _write(host.raw, i, value)
                return True
        return False
    names = promoted_inputs(workflow.graph, host, object_info)
    if input_name not in names:
        return False
    _write(host.raw, names.index(input_name), value)
    return True


def _write_ui(workflow: Workflow, exec_id: str, name: str, value: Any, object_info: dict[str, Any]) -> None:
    chain = _walk_path(workflow, exec_id)
    graph, node = chain[-1]
    slot = next((s for s in node.inputs if s.name == name and s.link is not None), None)
    link = graph.links.get(slot.link) if slot is not None and slot.link is not None else None
    if link is not None and link.origin_id == SUBGRAPH_INPUT_ID and len(chain) > 1 and link.origin_slot < len(graph.inputs):
        host = chain[-2][1]
        if _write_promoted(host, graph.inputs[link.origin_slot].name, value, workflow, object_info):
            return
    elif link is not None and graph.nodes.get(link.origin_id) is not None:
        source = graph.nodes[link.origin_id]
        if source.type == "PrimitiveNode" and source.type not in object_info:
            _write(source.raw, 0, value)
            return
    if not _write_widget(node, name, value, object_info):
        raise WorkflowError(f"cannot write {name!r} of node {exec_id} back into the workflow",
                            path=exec_id, expected="a widget of a known node type")


def set_ui_param(workflow: Workflow, object_info: dict[str, Any], what: str, value: Any, *,
                 node: str | None = None) -> list[Param]:
    """Like :func:`set_param`, writing into the UI workflow's ``widgets_values`` (in place)."""
    changed = []
    for param in _targets(find_ui_params(workflow, object_info), what, node):
        new = _coerce(param.kind, value)
        _write_ui(workflow, param.node_id, param.name, new, object_info)
        changed.append(Param(param.node_id, param.class_type, param.title, param.name, param.kind, new, param.role))
    workflow.refresh()
    return changed


def apply_ui_seed_mode(workflow: Workflow, object_info: dict[str, Any], mode: SeedMode, *,
                       value: int | None = None, node: str | None = None,
                       rng: random.Random | None = None) -> list[Param]:
    """:func:`apply_seed_mode` for UI workflows (also sets the editor's control widget to match)."""
    changed = []
    for param in _targets(find_ui_params(workflow, object_info), "seed", node):
        new = _coerce("seed", value) if mode == "fixed" and value is not None else next_seed(param.value, mode, rng)
        _write_ui(workflow, param.node_id, param.name, new, object_info)
        _, target = _walk_path(workflow, param.node_id)[-1]
        _write_widget(target, "control_after_generate", "randomize" if mode == "random" else mode, object_info)
        changed.append(Param(param.node_id, param.class_type, param.title, param.name, "seed", new))
    workflow.refresh()
    return changed
