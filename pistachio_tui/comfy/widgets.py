"""Which widgets the web editor gives a node, and the value each one holds.

A UI workflow stores widget values positionally (``widgets_values``), so naming
them needs the exact widget list the editor builds: one widget per widget-type
input in definition order, plus editor-only extras — the seed's
``control_after_generate`` companion and upload buttons (saved, never sent),
the sub-inputs of a dynamic combo (``resize_type.width``), and the preview
widgets some frontend extensions bolt onto particular node types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

#: Input types the editor shows as an editable widget rather than a socket.
_WIDGET_TYPES = frozenset({
    "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "MARKDOWN",
    "COMFY_DYNAMICCOMBO_V3", "LOAD_3D", "WEBCAM", "AUDIO_RECORD",
})
#: Seeds get a "control after generate" companion even without the option (editor convention).
SEED_NAMES = frozenset({"seed", "noise_seed"})
#: Options that add an editor-only upload button after the combo.
UPLOAD_OPTIONS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload", "file_upload")
_DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"


@dataclass(frozen=True)
class WidgetSpec:
    """One widget of a node.

    ``serialize``: its value goes into the API prompt. ``persist``: it takes a
    slot in the saved ``widgets_values``. ``text_box``: a DOM text area, which
    turns a saved ``null`` into an empty string.
    """

    name: str
    serialize: bool = True
    persist: bool = True
    dynamic_prompts: bool = False
    text_box: bool = False
    default: Any = None


#: Widgets frontend extensions add to particular node types: (name, spec) appended to the
#: required inputs, as the extensions do before the node is built.
_EXTENSION_INPUTS: dict[str, list[WidgetSpec]] = {
    **{t: [WidgetSpec("image", default="")] for t in ("SaveGLB", "Preview3D", "Preview3DAnimation")},
    **{t: [WidgetSpec("audioUI", persist=False, default="")]
       for t in ("LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus", "RecordAudio")},
    "PreviewAny": [
        WidgetSpec("preview", text_box=True, default=""),
        WidgetSpec("preview", text_box=True, default=""),
        WidgetSpec("previewMode", default=False),
    ],
}


def ordered_inputs(node_def: dict[str, Any], sections: tuple[str, ...] = ("required", "optional")) -> list[tuple[str, list[Any]]]:
    """``(name, spec)`` of every required then optional input, in the server's order."""
    result: list[tuple[str, list[Any]]] = []
    raw_inputs = node_def.get("input")
    if not isinstance(raw_inputs, dict):
        return result
    order = node_def.get("input_order") if isinstance(node_def.get("input_order"), dict) else {}
    for section in sections:
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
    if input_options(spec).get("forceInput"):
        return False
    return input_type_name(spec) in _WIDGET_TYPES


def default_value(spec: list[Any]) -> Any:
    """The value a fresh widget starts with."""
    opts = input_options(spec)
    if "default" in opts:
        return opts["default"]
    itype = input_type_name(spec)
    if itype in ("COMBO", _DYNAMIC_COMBO):
        values = combo_values(spec) or []
        first = values[0] if values else None
        return first.get("key") if isinstance(first, dict) else first
    return {"INT": 0, "FLOAT": 0, "BOOLEAN": False, "STRING": ""}.get(itype)


def has_control_widget(name: str, spec: list[Any]) -> bool:
    """Whether the editor adds a ``control_after_generate`` companion after this input."""
    control = input_options(spec).get("control_after_generate")
    itype = input_type_name(spec)
    if control is None:
        control = itype == "INT" and name in SEED_NAMES
    return bool(control) and itype in ("INT", "FLOAT", "COMBO")


def _widget_for(name: str, spec: list[Any]) -> WidgetSpec:
    opts = input_options(spec)
    text_box = input_type_name(spec) == "STRING" and bool(opts.get("multiline"))
    return WidgetSpec(name, dynamic_prompts=bool(opts.get("dynamicPrompts")), text_box=text_box, default=default_value(spec))


def _companions(name: str, spec: list[Any]) -> list[WidgetSpec]:
    extras = []
    if has_control_widget(name, spec):
        extras.append(WidgetSpec("control_after_generate", serialize=False, default="fixed"))
    opts = input_options(spec)
    if input_type_name(spec) == "COMBO" and any(opts.get(o) for o in UPLOAD_OPTIONS):
        extras.append(WidgetSpec("upload", serialize=False))
    return extras


def _dynamic_option_inputs(spec: list[Any], selected: Any) -> list[tuple[str, list[Any]]]:
    for option in combo_values(spec) or []:
        if isinstance(option, dict) and option.get("key") == selected:
            return ordered_inputs({"input": option.get("inputs") or {}})
    return []


def widget_layout(node_type: str, node_def: dict[str, Any], values: list[Any] | dict[str, Any] | None) -> list[tuple[WidgetSpec, Any]]:
    """Every widget of a node with its value, as the editor has it after loading the file."""
    if isinstance(values, dict):
        return _layout_named(node_type, node_def, values)
    seq = migrate_values(node_def, list(values or []))
    cursor = iter(range(len(seq)))

    def take(widget: WidgetSpec) -> Any:
        if not widget.persist:
            return widget.default
        index = next(cursor, None)
        value = widget.default if index is None else seq[index]
        return "" if value is None and widget.text_box else value

    return [(w, v) for w, v in _walk(node_type, node_def, take)]


def _layout_named(node_type: str, node_def: dict[str, Any], values: dict[str, Any]) -> list[tuple[WidgetSpec, Any]]:
    def take(widget: WidgetSpec) -> Any:
        value = values.get(widget.name, widget.default) if widget.persist else widget.default
        return "" if value is None and widget.text_box else value

    return list(_walk(node_type, node_def, take))


def _walk(node_type: str, node_def: dict[str, Any], take) -> Iterator[tuple[WidgetSpec, Any]]:
    def visit(inputs: list[tuple[str, list[Any]]], prefix: str) -> Iterator[tuple[WidgetSpec, Any]]:
        for name, spec in inputs:
            if not is_widget_input(spec):
                continue
            widget = _widget_for(prefix + name, spec)
            value = take(widget)
            yield widget, value
            for extra in _companions(name, spec):
                yield extra, take(extra)
            if input_type_name(spec) == _DYNAMIC_COMBO:
                yield from visit(_dynamic_option_inputs(spec, value), f"{prefix}{name}.")

    yield from visit(ordered_inputs(node_def, ("required",)), "")
    for extra in _EXTENSION_INPUTS.get(node_type, []):
        yield extra, take(extra)
    yield from visit(ordered_inputs(node_def, ("optional",)), "")


def widget_names(node_type: str, node_def: dict[str, Any]) -> list[str]:
    """Names of the widgets a fresh node of this type has (defaults for dynamic parts)."""
    return [w.name for w, _ in widget_layout(node_type, node_def, [])]


def migrate_values(node_def: dict[str, Any], values: list[Any]) -> list[Any]:
    """Drop saved values of inputs that have since become sockets (``forceInput``).

    The editor does the same when the count of saved values matches the node's
    old widget layout, so files saved before such a change still line up.
    """
    originals = [
        (name, spec) for name, spec in ordered_inputs(node_def)
        if is_widget_input(spec) or input_options(spec).get("forceInput")
    ]
    if not any(input_options(spec).get("forceInput") for _, spec in originals):
        return values
    # Mirrors the editor exactly, including its positional pairing of inputs with values.
    slots = sum(
        2 if input_options(spec).get("control_after_generate") or name in SEED_NAMES else 1
        for name, spec in originals
    )
    if slots != len(values):
        return values
    return [
        v for i, v in enumerate(values)
        if i >= len(originals) or not input_options(originals[i][1]).get("forceInput")
    ]
