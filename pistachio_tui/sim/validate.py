"""ComfyUI 0.8.0's prompt validation, rebuilt on ``object_info`` instead of Python node classes.

The rules and the error bodies follow ``execution.validate_prompt`` /
``validate_inputs`` of the real server: the first problem per input wins,
errors of an upstream node are reported on that node with the outputs that
depend on it, and an exception raised while looking at a node (a link to a
node that does not exist, a bad output slot) is reported as the real server
reports it, traceback included. The traceback lines carry the real server's
file and line numbers so a client cannot tell the two apart.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pistachio_tui.sim.catalog import combo_options, folder_holding, model_folder_for, with_combo_options

__all__ = ["ValidationOutcome", "check_prompt", "finalized_inputs", "validate_prompt"]

_EXECUTION_PY = "/workspace/ComfyUI/execution.py"
# Line numbers of the statements below in ComfyUI 0.8.0's execution.py.
_LINE_VALIDATE_PROMPT_CALL = 1043
_LINE_INNER_CALL = 838
_LINE_READ_INPUTS = 755
_LINE_LINKED_CLASS = 818
_LINE_RECEIVED_TYPE = 820

# Types that link to anything: the untyped "any" socket and v3 match-type templates.
_WILDCARD_TYPES = {"*", "COMFY_MATCHTYPE_V3"}


@dataclass
class ValidationOutcome:
    """What validation decided: the HTTP answer, and the prompt to queue if it passed."""

    status: int
    body: dict[str, Any]
    prompt: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)


class _NodeFailure(Exception):
    """An exception raised while validating one node, with the frames the real server shows."""

    def __init__(self, error: Exception, frames: list[str]):
        super().__init__(str(error))
        self.error = error
        self.frames = frames


def _frame(line: int, func: str, code: str, start: int, tilde: int, caret: int) -> str:
    marks = " " * (4 + start) + "~" * tilde + "^" * caret
    return f'  File "{_EXECUTION_PY}", line {line}, in {func}\n    {code}\n{marks}\n'


def _call_frame(line: int, func: str, code: str) -> str:
    start = code.index("await")
    return _frame(line, func, code, start, 0, len(code) - start)


_PROMPT_CALL_FRAME = _call_frame(
    _LINE_VALIDATE_PROMPT_CALL, "validate_prompt",
    "m = await validate_inputs(prompt_id, prompt, o, validated)",
)
_INNER_CALL_FRAME = _call_frame(
    _LINE_INNER_CALL, "validate_inputs",
    "r = await validate_inputs(prompt_id, prompt, o_id, validated)",
)


def _subscript_frame(line: int, code: str, target: str, key: str) -> str:
    start = code.index(target)
    return _frame(line, "validate_inputs", code, start, len(target), len(key))


def _exception_type_name(error: Exception) -> str:
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _types_compatible(received: Any, expected: Any) -> bool:
    """ComfyUI's ``validate_node_input`` (non-strict): equal, wildcard, or a shared comma-separated type."""
    if received == expected:
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        # Custom nodes that output an option list as their type feed new-style combos.
        return isinstance(received, list) and expected == "COMBO"
    if received in _WILDCARD_TYPES or expected in _WILDCARD_TYPES:
        return True
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return bool(got & want)


def finalized_inputs(specs: dict[str, dict[str, Any]], live_inputs: dict[str, Any],
                     prefix: tuple[str, ...] = ()) -> list[tuple[str, str, Any]]:
    """``(input id, category, spec)`` of the inputs a v3 node has for these ``live_inputs``,
    as ComfyUI's ``get_finalized_class_inputs`` works them out before validating.

    Dynamic inputs stand for inputs named ``<input>.<name>``: an autogrow input for
    each of its template's names present in the prompt (required for the first
    ``min``), a dynamic combo for the inputs of its chosen option plus itself, a
    dynamic slot for its inputs plus itself when connected. A dynamic input with
    nothing in the prompt stands for nothing, so it is never reported missing.
    """
    out: list[tuple[str, str, Any]] = []
    for category, inner in specs.items():
        for name, spec in inner.items():
            path = (*prefix, name)
            expand = _DYNAMIC_EXPANSIONS.get(spec[0]) if isinstance(spec[0], str) else None
            if expand is None:
                out.append((".".join(path), category, spec))
            else:
                out += expand(spec, category, live_inputs, path)
    return out


def _autogrow(spec: list[Any], _category: str, live: dict[str, Any], path: tuple[str, ...]) -> list[Any]:
    template = spec[1]["template"]
    if "names" in template:
        names = list(template["names"])
    else:
        names = [f"{template['prefix']}{i}" for i in range(template["max"])]
    # The last category's first input is the template, as upstream picks it.
    item = None
    for group in template["input"].values():
        item = next(iter(group.values()))
    grown: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        if ".".join((*path, name)) in live:
            grown.setdefault("required" if i < template["min"] else "optional", {})[name] = item
    return finalized_inputs(grown, live, path)


def _dynamic_combo(spec: list[Any], category: str, live: dict[str, Any], path: tuple[str, ...]) -> list[Any]:
    name = ".".join(path)
    if name not in live:
        return []
    for option in spec[1]["options"]:
        if option["key"] == live[name]:
            return [*finalized_inputs(option["inputs"], live, path), (name, category, spec)]
    return []


def _dynamic_slot(spec: list[Any], category: str, live: dict[str, Any], path: tuple[str, ...]) -> list[Any]:
    name = ".".join(path)
    if name not in live:
        return []
    return [*finalized_inputs(spec[1]["inputs"], live, path), (name, category, spec)]


_DYNAMIC_EXPANSIONS = {
    "COMFY_AUTOGROW_V3": _autogrow,
    "COMFY_DYNAMICCOMBO_V3": _dynamic_combo,
    "COMFY_DYNAMICSLOT_V3": _dynamic_slot,
}


class _Validator:
    def __init__(self, prompt: dict[str, Any], object_info: dict[str, Any],
                 models: dict[str, list[str]] | None):
        self.prompt = prompt
        self.object_info = object_info
        self.models = models
        self.validated: dict[Any, tuple[bool, list[dict[str, Any]], Any]] = {}

    def input_spec(self, class_type: str, name: str, spec: list[Any]) -> list[Any]:
        """The spec as the live server would define it: model pickers list the current files."""
        options = combo_options(spec)
        if self.models is None or options is None:
            return spec
        folder = model_folder_for(class_type, name) or folder_holding(options, self.models)
        if folder is None:
            return spec
        return with_combo_options(spec, self.models.get(folder, []))

    def declared_inputs(self, class_type: str, live_inputs: dict[str, Any]) -> list[tuple[str, str, list[Any]]]:
        """The node's inputs as validation sees them, v3 dynamic inputs expanded against ``live_inputs``."""
        info = self.object_info[class_type]
        inputs = info.get("input", {})
        order = info.get("input_order", {})
        top: dict[str, dict[str, Any]] = {}
        for category in ("required", "optional"):
            specs = inputs.get(category) or {}
            top[category] = {name: specs[name] for name in order.get(category) or list(specs) if name in specs}
        return [(name, category, self.input_spec(class_type, name.rsplit(".", 1)[-1], list(spec)))
                for name, category, spec in finalized_inputs(top, live_inputs)]

    def validate_node(self, unique_id: Any) -> tuple[bool, list[dict[str, Any]], Any]:
        if unique_id in self.validated:
            return self.validated[unique_id]
        node = self.prompt[unique_id]
        try:
            inputs = node["inputs"]
        except (KeyError, TypeError) as ex:
            code = "inputs = prompt[unique_id]['inputs']"
            raise _NodeFailure(ex, [_subscript_frame(_LINE_READ_INPUTS, code, "prompt[unique_id]", "['inputs']")]) from ex
        class_type = node["class_type"]
        errors: list[dict[str, Any]] = []
        valid = True
        for name, category, spec in self.declared_inputs(class_type, inputs):
            input_type = spec[0]
            extra_info = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if name not in inputs:
                if category == "required":
                    errors.append({
                        "type": "required_input_missing",
                        "message": "Required input is missing",
                        "details": f"{name}",
                        "extra_info": {"input_name": name},
                    })
                continue
            info = [input_type, extra_info]
            val = inputs[name]
            if isinstance(val, list):
                link_ok = self.check_link(name, val, info, errors)
                if link_ok is False:
                    valid = False
                continue
            error = self.check_value(inputs, name, val, input_type, extra_info, info)
            if error is not None:
                errors.append(error)
        result = (False, errors, unique_id) if errors or not valid else (True, [], unique_id)
        self.validated[unique_id] = result
        return result

    def check_link(self, name: str, val: list[Any], info: list[Any],
                   errors: list[dict[str, Any]]) -> bool | None:
        """Check one linked input; False when an upstream node is invalid, None when an error was recorded."""
        if len(val) != 2:
            errors.append({
                "type": "bad_linked_input",
                "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                "details": f"{name}",
                "extra_info": {"input_name": name, "input_config": info, "received_value": val},
            })
            return None
        o_id = val[0]
        try:
            o_class_type = self.prompt[o_id]["class_type"]
        except (KeyError, TypeError) as ex:
            code = "o_class_type = prompt[o_id]['class_type']"
            raise _NodeFailure(ex, [_subscript_frame(_LINE_LINKED_CLASS, code, "prompt", "[o_id]")]) from ex
        try:
            received_type = tuple(self.object_info[o_class_type].get("output", []))[val[1]]
        except (IndexError, TypeError) as ex:
            code = "received_type = r[val[1]]"
            raise _NodeFailure(ex, [_subscript_frame(_LINE_RECEIVED_TYPE, code, "r", "[val[1]]")]) from ex
        if not _types_compatible(received_type, info[0]):
            errors.append({
                "type": "return_type_mismatch",
                "message": "Return type mismatch between linked nodes",
                "details": f"{name}, received_type({received_type}) mismatch input_type({info[0]})",
                "extra_info": {
                    "input_name": name, "input_config": info,
                    "received_type": received_type, "linked_node": val,
                },
            })
            return None
        try:
            upstream = self.validate_node(o_id)
        except _NodeFailure as failure:
            self.validated[o_id] = (False, [{
                "type": "exception_during_inner_validation",
                "message": "Exception when validating inner node",
                "details": str(failure.error),
                "extra_info": {
                    "input_name": name,
                    "input_config": info,
                    "exception_message": str(failure.error),
                    "exception_type": _exception_type_name(failure.error),
                    "traceback": [_INNER_CALL_FRAME, *failure.frames],
                    "linked_node": val,
                },
            }], o_id)
            return False
        return False if upstream[0] is False else True

    @staticmethod
    def check_value(inputs: dict[str, Any], name: str, val: Any, input_type: Any,
                    extra_info: dict[str, Any], info: list[Any]) -> dict[str, Any] | None:
        """Convert a constant as the real server does and check range and choices; the first error or None."""
        try:
            if isinstance(val, dict) and "__value__" in val:
                val = val["__value__"]
                inputs[name] = val
            converter = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(input_type) \
                if isinstance(input_type, str) else None
            if converter is not None:
                val = converter(val)
                inputs[name] = val
        except Exception as ex:  # noqa: BLE001 - any conversion failure is reported, as upstream does
            return {
                "type": "invalid_input_type",
                "message": f"Failed to convert an input value to a {input_type} value",
                "details": f"{name}, {val}, {ex}",
                "extra_info": {
                    "input_name": name, "input_config": info,
                    "received_value": val, "exception_message": str(ex),
                },
            }
        if "min" in extra_info and val < extra_info["min"]:
            return {
                "type": "value_smaller_than_min",
                "message": "Value {} smaller than min of {}".format(val, extra_info["min"]),
                "details": f"{name}",
                "extra_info": {"input_name": name, "input_config": info, "received_value": val},
            }
        if "max" in extra_info and val > extra_info["max"]:
            return {
                "type": "value_bigger_than_max",
                "message": "Value {} bigger than max of {}".format(val, extra_info["max"]),
                "details": f"{name}",
                "extra_info": {"input_name": name, "input_config": info, "received_value": val},
            }
        options = combo_options([input_type, extra_info])
        if options is not None and val not in options:
            input_config: list[Any] | None = info
            if len(options) > 20:
                list_info = f"(list of length {len(options)})"
                input_config = None
            else:
                list_info = str(options)
            return {
                "type": "value_not_in_list",
                "message": "Value not in list",
                "details": f"{name}: '{val}' not in {list_info}",
                "extra_info": {"input_name": name, "input_config": input_config, "received_value": val},
            }
        return None


def _invalid_prompt(message: str, node_id: str) -> ValidationOutcome:
    error = {"type": "invalid_prompt", "message": message, "details": f"Node ID '#{node_id}'", "extra_info": {}}
    return ValidationOutcome(400, {"error": error, "node_errors": {}})


def _missing_node_type(node_id: str, node: dict[str, Any]) -> ValidationOutcome:
    """Newer ComfyUI (after 0.8.0): the class in ``extra_info``, the message naming the node's title."""
    class_type = node.get("class_type")
    title = (node.get("_meta") or {}).get("title")
    if class_type is None:
        message = (f"Node '{title or f'ID #{node_id}'}' has no class_type. The workflow may be corrupted "
                   "or a custom node is missing.")
    else:
        title = title or class_type
        message = f"Node '{title}' not found. The custom node may not be installed."
    error = {"type": "missing_node_type", "message": message, "details": f"Node ID '#{node_id}'",
             "extra_info": {"node_id": node_id, "class_type": class_type, "node_title": title}}
    return ValidationOutcome(400, {"error": error, "node_errors": {}})


def check_prompt(prompt: dict[str, Any], object_info: dict[str, Any],
                 models: dict[str, list[str]] | None = None,
                 partial_execution_targets: list[str] | None = None,
                 newer: bool = False) -> ValidationOutcome:
    """Validate an API-format prompt; the outcome carries the converted prompt to queue.

    ``newer`` reports a missing node class the way servers after 0.8.0 do (``missing_node_type``).
    Raises ``ValueError`` when ``prompt`` is not a JSON object (the real server
    answers that with a bare 500).
    """
    if not isinstance(prompt, dict) or not all(isinstance(node, dict) for node in prompt.values()):
        raise ValueError("prompt must be an object of node objects")
    prompt = copy.deepcopy(prompt)
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if newer and ("class_type" not in node or (isinstance(node["class_type"], str)
                                                   and node["class_type"] not in object_info)):
            return _missing_node_type(node_id, node)
        if "class_type" not in node:
            return _invalid_prompt("Cannot execute because a node is missing the class_type property.", node_id)
        class_type = node["class_type"]
        info = object_info.get(class_type) if isinstance(class_type, str) else None
        if info is None:
            return _invalid_prompt(f"Cannot execute because node {class_type} does not exist.", node_id)
        if info.get("output_node") is True:
            if partial_execution_targets is None or node_id in partial_execution_targets:
                outputs.append(node_id)
    if not outputs:
        error = {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}
        return ValidationOutcome(400, {"error": error, "node_errors": {}})

    validator = _Validator(prompt, object_info, models)
    good_outputs: list[str] = []
    failed: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, dict[str, Any]] = {}
    for output_id in outputs:
        try:
            valid, reasons, _ = validator.validate_node(output_id)
        except _NodeFailure as failure:
            valid = False
            reasons = [{
                "type": "exception_during_validation",
                "message": "Exception when validating node",
                "details": str(failure.error),
                "extra_info": {
                    "exception_type": _exception_type_name(failure.error),
                    "traceback": [_PROMPT_CALL_FRAME, *failure.frames],
                },
            }]
            validator.validated[output_id] = (False, reasons, output_id)
        if valid is True:
            good_outputs.append(output_id)
            continue
        failed.append((output_id, reasons))
        for node_id, (node_valid, node_reasons, _) in validator.validated.items():
            # Nodes downstream of a broken node are invalid without reasons of
            # their own; the real server leaves them out, and so do we.
            if node_valid is not True and node_reasons:
                if node_id not in node_errors:
                    node_errors[node_id] = {
                        "errors": node_reasons,
                        "dependent_outputs": [],
                        "class_type": prompt[node_id]["class_type"],
                    }
                node_errors[node_id]["dependent_outputs"].append(output_id)

    if not good_outputs:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, reasons in failed for e in reasons)
        error = {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": details,
            "extra_info": {},
        }
        return ValidationOutcome(400, {"error": error, "node_errors": node_errors})
    return ValidationOutcome(200, {"node_errors": node_errors}, prompt, good_outputs)


def validate_prompt(prompt: dict[str, Any], object_info: dict[str, Any],
                    models: dict[str, list[str]] | None = None) -> tuple[int, dict[str, Any]]:
    """Validate an API-format prompt as ComfyUI 0.8.0 does: ``(HTTP status, response body)``.

    On success the body is ``{"node_errors": {...}}`` (errors of outputs that
    were dropped while others passed); the server adds ``prompt_id`` and
    ``number``. ``models`` maps folder → filenames and, when given, replaces
    the option lists of model pickers (checkpoint, LoRA, VAE... loaders).
    """
    outcome = check_prompt(prompt, object_info, models)
    return outcome.status, outcome.body
