"""Which widgets the web editor gives a node, derived from its ``object_info`` entry.

A UI workflow stores widget values positionally (``widgets_values``), so naming
them needs the exact widget list the editor builds: one widget per widget-type
input in definition order, plus the editor-only extras (the seed's
``control_after_generate`` companion, upload buttons) that take a slot in
``widgets_values`` but never reach the API prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Input types the editor shows as an editable widget rather than a socket.
_PLAIN_WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "MARKDOWN"})
#: Seeds get a "control after generate" companion even without the option (editor convention).
_SEED_NAMES = frozenset({"seed", "noise_seed"})
#: Options that add an editor-only upload button after the combo.
_UPLOAD_OPTIONS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload", "file_upload")


@dataclass(frozen=True)
class WidgetSpec:
    """One widget of a node: its name, whether its value goes into the API prompt."""

    name: str
    serialize: bool = True
    dynamic_prompts: bool = False
    input_type: str = ""


def ordered_inputs(node_def: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """``(name, spec)`` of every required then optional input, in the server's order."""
    result: list[tuple[str, list[Any]]] = []
    raw_inputs = node_def.get("input")
    if not isinstance(raw_inputs, dict):
        return result
    order = node_def.get("input_order") if isinstance(node_def.get("input_order"), dict) else {}
    for section in ("required", "optional"):
        specs = raw_inputs.get(section)
        if not isinstance(specs, dict):
            continue
        names = order.get(section) if isinstance(order.get(section), list) else list(specs)
        for name in names:
            spec = specs.get(name)
            if isinstance(spec, (list, tuple)) and spec:
                result.append((name, list(spec)))
    return result


def input_type_name(spec: list[Any]) -> str:
    """``COMBO`` for option lists, else the declared type string."""
    head = spec[0]
    if isinstance(head, list):
        return "COMBO"
    return head if isinstance(head, str) else str(head)


def input_options(spec: list[Any]) -> dict[str, Any]:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def combo_values(spec: list[Any]) -> list[Any] | None:
    """The allowed values of a combo input, in old (list) or new (``options``) form."""
    if isinstance(spec[0], list):
        return spec[0]
    options = input_options(spec).get("options")
    return options if isinstance(options, list) else None


def is_widget_input(spec: list[Any]) -> bool:
    opts = input_options(spec)
    if opts.get("forceInput"):
        return False
    return input_type_name(spec) in _PLAIN_WIDGET_TYPES


def node_widgets(node_def: dict[str, Any]) -> list[WidgetSpec]:
    """The widgets, in ``widgets_values`` order, that the editor creates for a node type."""
    widgets: list[WidgetSpec] = []
    for name, spec in ordered_inputs(node_def):
        if not is_widget_input(spec):
            continue
        itype = input_type_name(spec)
        opts = input_options(spec)
        widgets.append(WidgetSpec(name, dynamic_prompts=bool(opts.get("dynamicPrompts")), input_type=itype))
        control = opts.get("control_after_generate")
        if control is None:
            control = itype == "INT" and name in _SEED_NAMES
        if control and itype in ("INT", "FLOAT", "COMBO"):
            widgets.append(WidgetSpec("control_after_generate", serialize=False))
        if itype == "COMBO" and any(opts.get(o) for o in _UPLOAD_OPTIONS):
            widgets.append(WidgetSpec("upload", serialize=False))
    return widgets
