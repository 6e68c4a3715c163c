"""What the preview pane shows about a workflow: computed off the UI thread, rendered as text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pistachio_tui.ui.format import esc
from pistachio_tui.workflow.convert import ConversionResult, to_api
from pistachio_tui.workflow.deps import Needs, analyse
from pistachio_tui.workflow.edit import Param, find_params
from pistachio_tui.workflow.load import Workflow

#: The form shows the first few editable values; the rest stay as saved.
MAX_PARAMS = 12


@dataclass
class Preview:
    """A loaded workflow, its API prompt (if the server's nodes allow) and what it needs."""

    workflow: Workflow
    prompt: dict[str, Any] | None
    needs: Needs | None
    params: list[Param] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def build_preview(workflow: Workflow, object_info: dict[str, Any] | None) -> Preview:
    """Convert and analyse (slow for big graphs: call from a thread)."""
    if not object_info:
        prompt = workflow.api
        return Preview(workflow, prompt, None, find_params(prompt)[:MAX_PARAMS] if prompt else [],
                       ["no server connected: models and missing nodes unknown"])
    conversion = ConversionResult(workflow.api) if workflow.api is not None else to_api(workflow, object_info)
    needs = analyse(workflow, object_info, None, conversion)
    return Preview(workflow, conversion.prompt, needs, find_params(conversion.prompt)[:MAX_PARAMS],
                   conversion.warnings)


def _mark(present: bool | None) -> str:
    return {True: "[green]✓[/]", False: "[red]✗ missing[/]"}.get(present, "[yellow]?[/]")


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
                         + "  → Fix screen (5) or `pistachio fix`")
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
