"""What the preview pane shows about a workflow: computed off the UI thread, rendered as text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pistachio_tui.ui.format import esc
from pistachio_tui.workflow.convert import ConversionResult, to_api
from pistachio_tui.workflow.deps import Needs, analyse
from pistachio_tui.workflow.edit import Param, find_params
from pistachio_tui.workflow.load import Workflow
from pistachio_tui.workflow.node_widgets import combo_values, input_options

#: The form shows the first few editable values; the rest stay as saved.
MAX_PARAMS = 12


@dataclass
class Preview:
    """A loaded workflow, its API prompt (if the server's nodes allow) and what it needs.

    ``choices`` maps a param's index to the server's allowed values (its model
    files, samplers, schedulers, input images); ``uploads`` holds the indexes of
    params that take an uploaded image.
    """

    workflow: Workflow
    prompt: dict[str, Any] | None
    needs: Needs | None
    params: list[Param] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    choices: dict[int, list[str]] = field(default_factory=dict)
    uploads: set[int] = field(default_factory=set)


def _spec(object_info: dict[str, Any], class_type: str, name: str) -> list[Any] | None:
    inputs = (object_info.get(class_type) or {}).get("input") or {}
    for group in ("required", "optional"):
        spec = (inputs.get(group) or {}).get(name)
        if isinstance(spec, list) and spec:
            return spec
    return None


def _model_params(prompt: dict[str, Any], object_info: dict[str, Any], known: set[tuple[str, str]]) -> list[Param]:
    """Model-file and input-image fields the common params leave out (``ckpt_name``, ``vae_name``, ``image``…)."""
    found = []
    for node_id, node in prompt.items():
        class_type = str(node.get("class_type", ""))
        title = str((node.get("_meta") or {}).get("title") or class_type)
        for name, value in (node.get("inputs") or {}).items():
            spec = _spec(object_info, class_type, name)
            if (node_id, name) in known or not isinstance(value, str) or spec is None or combo_values(spec) is None:
                continue
            if input_options(spec).get("image_upload"):
                found.append(Param(node_id, class_type, title, name, "image", value))
            elif name.endswith("_name"):
                found.append(Param(node_id, class_type, title, name, "model", value))
    return found


def with_choices(preview: Preview, object_info: dict[str, Any]) -> Preview:
    """Models and input images first, then the common params; each combo gets the server's list."""
    prompt = preview.prompt or {}
    known = {(p.node_id, p.name) for p in preview.params}
    params = _model_params(prompt, object_info, known) + preview.params
    preview.params = params
    for index, param in enumerate(params):
        spec = _spec(object_info, param.class_type, param.name)
        values = combo_values(spec) if spec else None
        if spec is not None and values is not None:
            preview.choices[index] = [str(v) for v in values]
            if input_options(spec).get("image_upload"):
                preview.uploads.add(index)
    return preview


def build_preview(workflow: Workflow, object_info: dict[str, Any] | None) -> Preview:
    """Convert and analyse (slow for big graphs: call from a thread)."""
    if not object_info:
        prompt = workflow.api
        return Preview(workflow, prompt, None, find_params(prompt)[:MAX_PARAMS] if prompt else [],
                       ["no server connected: models and missing nodes unknown"])
    conversion = ConversionResult(workflow.api) if workflow.api is not None else to_api(workflow, object_info)
    needs = analyse(workflow, object_info, None, conversion)
    preview = Preview(workflow, conversion.prompt, needs, find_params(conversion.prompt)[:MAX_PARAMS],
                      conversion.warnings)
    return with_choices(preview, object_info)


def _mark(present: bool | None) -> str:
    if present is None:
        return "[yellow]?[/]"
    return "[green]✓[/]" if present else "[red]✗ missing[/]"


def preview_markup(preview: Preview, server: str | None) -> str:
    """Node count, node types, models with presence, missing nodes."""
    wf = preview.workflow
    lines = [f"[b]{esc(wf.name)}[/b]  ({wf.format} format)"]
    if preview.prompt is not None:
        lines.append(f"{len(preview.prompt)} nodes to run")
    needs = preview.needs
    if needs is not None:
        types = esc(", ".join(needs.node_types[:12])) + (" …" if len(needs.node_types) > 12 else "")
        lines.append(f"{len(needs.node_types)} node types: {types}")
        if needs.missing_nodes:
            lines.append(f"[red]Missing on {esc(server)}:[/] " + esc(", ".join(needs.missing_nodes))
                         + "  → press f (or 5) to fix")
        else:
            lines.append(f"[green]All node types available on {esc(server)}[/]")
        if needs.models:
            lines.append("Models:")
            lines.extend(f"  {esc(m.folder or '?')}/{esc(m.name)} {_mark(m.present)}" for m in needs.models[:10])
            if len(needs.models) > 10:
                lines.append(f"  … and {len(needs.models) - 10} more")
        else:
            lines.append("No model files referenced")
    lines.extend(f"[yellow]{esc(w)}[/]" for w in preview.warnings[:3])
    return "\n".join(lines)
