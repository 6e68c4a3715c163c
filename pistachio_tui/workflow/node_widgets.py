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
from typing import Any, Callable

#: The editor's widget registry: an input whose type is a key here becomes a widget, any
#: other type a socket (``inputIsWidget``). The core constructors (``ComfyWidgets`` in
#: ``scripts/widgets.ts``, dynamic widgets included), then the types the core extensions
#: register through ``getCustomWidgets`` — of frontend 1.35.9 and of 1.58.1 together, as
#: read from their release bundles, so files from either editor lay out the same way.
WIDGET_TYPES = frozenset({
    "INT", "FLOAT", "BOOLEAN", "STRING", "MARKDOWN", "COMBO", "IMAGEUPLOAD", "COLOR", "IMAGECOMPARE",
    "BOUNDING_BOX", "CHART", "GALLERIA", "PAINTER", "COMPOSITOR", "TEXTAREA", "CURVE", "RANGE",
    "VIDEO_EDIT", "RESOLUTION_PREVIEW", "BOUNDING_BOXES", "LIGHT_INFO_PREVIEW", "COLORS",
    "COMFY_DYNAMICCOMBO_V3", "COMFY_DYNAMICGROUP_V3",
    "AUDIO_UI", "AUDIOUPLOAD", "AUDIO_RECORD", "WEBCAM", "LOAD_3D", "LOAD_3D_ADVANCED", "PREVIEW_3D",
    "CAMERA_ANGLE_VIEW", "CAMERA_INFO_STATE", "COMFY_BRANCH_INPUT_NAMES", "COMFY_BRANCH_SELECTOR",
})
#: Widget types whose prompt value carries its type (``{"__type__": T, "__value__": v}``),
#: as graphToPrompt does for the curve editor; every other list value is wrapped untyped.
TYPED_VALUE_WIDGETS = frozenset({"CURVE"})
#: Seeds get a "control after generate" companion even without the option (editor convention).
SEED_NAMES = frozenset({"seed", "noise_seed"})
#: Options that add editor-only upload buttons after the combo (saved, never sent).
UPLOAD_OPTIONS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload", "file_upload")
_UPLOAD_BUTTONS = {"file_upload": ("upload3dmodel", "uploadExtraResources", "clear")}
_DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"


@dataclass(frozen=True, slots=True)
class WidgetSpec:
    """One widget of a node.

    Every widget takes a slot in the saved ``widgets_values``. ``serialize``:
    its value goes into the API prompt. ``text_box``: a DOM text area, which
    turns a saved ``null`` into an empty string.
    """

    name: str
    serialize: bool = True
    dynamic_prompts: bool = False
    text_box: bool = False
    default: Any = None
    #: The input type the widget was built for (``CURVE``...), empty for editor-only extras.
    type: str = ""
    #: The editor sends ``""`` whatever was saved: the recorder uploads what was recorded in
    #: this browser session (nothing, for a reopened file), and an audio player (``audioUI``)
    #: is a DOM widget without a value getter in frontend 1.35.9 (1.58 leaves it out).
    computed: bool = False


def prompt_value(widget: WidgetSpec, value: Any) -> Any:
    """``value`` as graphToPrompt puts it in the prompt: lists (which would read as links) wrapped."""
    if widget.type in TYPED_VALUE_WIDGETS and value is not None:
        return {"__type__": widget.type, "__value__": value}
    return {"__value__": value} if isinstance(value, list) else value


#: Node types that get an audio player widget (``audioUI``, the AudioWidget extension).
AUDIO_PLAYER_NODES = ("LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus", "SaveAudioAdvanced")
#: Widgets frontend extensions add to particular node types: (name, spec) appended to the
#: required inputs, as the extensions do before the node is built.
_EXTENSION_INPUTS: dict[str, list[WidgetSpec]] = {
    **{t: [WidgetSpec("image", default="")] for t in ("SaveGLB", "Preview3D", "Preview3DAnimation")},
    **{t: [WidgetSpec("audioUI", default="", type="AUDIO_UI", computed=True)] for t in AUDIO_PLAYER_NODES},
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
    raw_order = node_def.get("input_order")
    order: dict[str, Any] = raw_order if isinstance(raw_order, dict) else {}
    for section in sections:
        specs = raw_inputs.get(section)
        if not isinstance(specs, dict):
            continue
        section_order = order.get(section)
        names: list[Any] = section_order if isinstance(section_order, list) else list(specs)
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
    return input_type_name(spec) in WIDGET_TYPES


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
    itype = input_type_name(spec)
    text_box = itype == "STRING" and bool(opts.get("multiline"))
    return WidgetSpec(name, dynamic_prompts=bool(opts.get("dynamicPrompts")), text_box=text_box,
                      default=default_value(spec), type=itype, computed=itype == "AUDIO_RECORD")


def _companions(name: str, spec: list[Any]) -> list[WidgetSpec]:
    extras = []
    if input_type_name(spec) == "AUDIO_RECORD":
        extras.append(WidgetSpec(name, serialize=False))  # the record button, named like its input
    if has_control_widget(name, spec):
        extras.append(WidgetSpec("control_after_generate", serialize=False, default="fixed"))
    opts = input_options(spec)
    if input_type_name(spec) == "COMBO":
        option = next((o for o in UPLOAD_OPTIONS if opts.get(o)), None)
        if option is not None:
            extras.extend(WidgetSpec(b, serialize=False) for b in _UPLOAD_BUTTONS.get(option, ("upload",)))
    return extras


def _dynamic_option_inputs(spec: list[Any], selected: Any) -> list[tuple[str, list[Any]]]:
    for option in combo_values(spec) or []:
        if isinstance(option, dict) and option.get("key") == selected:
            return ordered_inputs({"input": option.get("inputs") or {}})
    return []


@dataclass(frozen=True, slots=True)
class WidgetValue:
    """A widget, its current value, and where that value sits in ``widgets_values``.

    ``slot`` is a list index, a key (object-form values) or ``None`` when the
    widget is not saved or the file has no entry for it (default value).
    """

    widget: WidgetSpec
    value: Any
    slot: int | str | None


@dataclass(frozen=True, slots=True)
class _Entry:
    """One widget input of a node definition, with everything about it that needs no value."""

    name: str
    spec: list[Any]
    widget: WidgetSpec
    companions: tuple[WidgetSpec, ...]
    dynamic: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    """A node definition's widget layout, worked out once and reused for every node of the class."""

    required: tuple[_Entry, ...]
    optional: tuple[_Entry, ...]
    #: Per input that is or was a widget (in order): whether it has since become a socket.
    forced: tuple[bool, ...]
    #: How many values a file saved before those inputs became sockets holds.
    forced_slots: int
    #: Every input's spec by name (required first).
    specs: dict[str, list[Any]]
    #: The widgets in order when the layout does not depend on values (no dynamic combo), else None.
    fixed: tuple[WidgetSpec, ...] | None


#: id(node definition) → (the definition, its plan). Definitions are read, never changed, so a
#: plan stays valid while its definition lives; holding the definition keeps its id from being
#: reused. Bounded: a long session that refetches object_info many times starts over.
_PLANS: dict[int, tuple[dict[str, Any], _Plan]] = {}
_PLAN_LIMIT = 8192


def _entries(inputs: list[tuple[str, list[Any]]], prefix: str = "") -> tuple[_Entry, ...]:
    return tuple(
        _Entry(name, spec, _widget_for(prefix + name, spec), tuple(_companions(name, spec)),
               input_type_name(spec) == _DYNAMIC_COMBO)
        for name, spec in inputs if is_widget_input(spec)
    )


def _plan(node_def: dict[str, Any]) -> _Plan:
    hit = _PLANS.get(id(node_def))
    if hit is not None and hit[0] is node_def:
        return hit[1]
    every = ordered_inputs(node_def)
    originals = [(name, spec) for name, spec in every if is_widget_input(spec) or input_options(spec).get("forceInput")]
    specs: dict[str, list[Any]] = {}
    for name, spec in every:
        specs.setdefault(name, spec)
    required = _entries(ordered_inputs(node_def, ("required",)))
    optional = _entries(ordered_inputs(node_def, ("optional",)))
    entries = required + optional
    fixed = None if any(e.dynamic for e in entries) else tuple(
        w for e in entries for w in (e.widget, *e.companions))
    plan = _Plan(
        required,
        optional,
        tuple(bool(input_options(spec).get("forceInput")) for _, spec in originals),
        sum(2 if input_options(spec).get("control_after_generate") or name in SEED_NAMES else 1
            for name, spec in originals),
        specs,
        fixed,
    )
    if len(_PLANS) >= _PLAN_LIMIT:
        _PLANS.clear()
    _PLANS[id(node_def)] = (node_def, plan)
    return plan


def input_spec(node_def: dict[str, Any], name: str) -> list[Any] | None:
    """The spec of input ``name`` (required or optional), if the definition has one."""
    return _plan(node_def).specs.get(name)


Take = Callable[[WidgetSpec], tuple[Any, "int | str | None"]]


def widget_layout(node_type: str, node_def: dict[str, Any], values: list[Any] | dict[str, Any] | None) -> list[WidgetValue]:
    """Every widget of a node with its value, as the editor has it after loading the file."""
    return [WidgetValue(w, v, slot) for w, v, slot in _layout(node_type, node_def, values)]


def widget_values(node_type: str, node_def: dict[str, Any],
                  values: list[Any] | dict[str, Any] | None) -> list[tuple[WidgetSpec, Any]]:
    """``(widget, value)`` of every widget of a node: :func:`widget_layout` without the slots."""
    plan = _plan(node_def)
    if plan.fixed is not None and node_type not in _EXTENSION_INPUTS and type(values) is list:
        # The common case, without the slot bookkeeping: see _layout.
        kept = _kept_indexes(plan, len(values))
        count = len(kept)
        return [
            (w, "" if (v := values[kept[i]]) is None and w.text_box else v) if i < count else (w, w.default)
            for i, w in enumerate(plan.fixed)
        ]
    return [(w, v) for w, v, _ in _layout(node_type, node_def, values)]


def _layout(node_type: str, node_def: dict[str, Any],
            values: list[Any] | dict[str, Any] | None) -> list[tuple[WidgetSpec, Any, int | str | None]]:
    plan = _plan(node_def)
    if isinstance(values, dict):
        named = values

        def take_named(widget: WidgetSpec) -> tuple[Any, int | str | None]:
            if widget.name not in named:
                return widget.default, None
            value = named[widget.name]
            return ("" if value is None and widget.text_box else value), widget.name

        return _walk(node_type, plan, take_named)
    seq = values or []
    kept = _kept_indexes(plan, len(seq))
    if plan.fixed is not None and node_type not in _EXTENSION_INPUTS:
        # Most nodes: widgets in a fixed order, paired with the kept values by position.
        count = len(kept)
        return [
            ((w, "" if (v := seq[kept[i]]) is None and w.text_box else v, kept[i]) if i < count
             else (w, w.default, None))
            for i, w in enumerate(plan.fixed)
        ]
    cursor = iter(kept)

    def take(widget: WidgetSpec) -> tuple[Any, int | str | None]:
        index = next(cursor, None)
        if index is None:
            return widget.default, None
        value = seq[index]
        return ("" if value is None and widget.text_box else value), index

    return _walk(node_type, plan, take)


def _walk(node_type: str, plan: _Plan, take: Take) -> list[tuple[WidgetSpec, Any, int | str | None]]:
    out: list[tuple[WidgetSpec, Any, int | str | None]] = []

    def visit(entries: tuple[_Entry, ...]) -> None:
        for entry in entries:
            value, slot = take(entry.widget)
            out.append((entry.widget, value, slot))
            for extra in entry.companions:
                out.append((extra, *take(extra)))
            if entry.dynamic:
                visit(_entries(_dynamic_option_inputs(entry.spec, value), entry.widget.name + "."))

    visit(plan.required)
    for extra in _EXTENSION_INPUTS.get(node_type, ()):
        out.append((extra, *take(extra)))
    visit(plan.optional)
    return out


def kept_value_indexes(node_def: dict[str, Any], count: int) -> list[int]:
    """Indexes of the saved values that still belong to widgets.

    Inputs that have since become sockets (``forceInput``) lose their saved
    value; the editor drops them only when the number of saved values matches
    the node's old widget layout, pairing inputs with values by position (as
    here), so files saved before such a change still line up.
    """
    return list(_kept_indexes(_plan(node_def), count))


def _kept_indexes(plan: _Plan, count: int) -> range | list[int]:
    forced = plan.forced
    if plan.forced_slots != count or True not in forced:
        return range(count)
    return [i for i in range(count) if i >= len(forced) or not forced[i]]
