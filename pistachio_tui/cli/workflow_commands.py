"""``pistachio workflow inspect|convert``: look inside workflow files and turn them into API prompts.

::

    pistachio workflow inspect FILE [--server URL|NAME | --object-info FILE] [--json]
    pistachio workflow convert FILE... (--server URL|NAME | --object-info FILE) -o OUT [--json]

``convert`` writes one API prompt per workflow: to OUT itself for a single
one, else to ``OUT/<stem>.api.json`` (zip archives may hold several). A
failing file does not stop the others. An output never replaces an input,
an existing output is replaced only with ``--force``, and every output is
written to a temporary name and renamed, so it is whole or absent.
Exit codes: 0 all good, 1 some conversion or write failed, 2 an input could
not be read as a workflow, 3 the server was unreachable, 64 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pistachio_tui.cli import exit_codes

if TYPE_CHECKING:
    from pistachio_tui.workflow.deps import Needs
    from pistachio_tui.workflow.load import Workflow


class _SourceError(Exception):
    """Node definitions could not be obtained; carries the exit code to use."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def register(subparsers: argparse._SubParsersAction) -> None:
    workflow = subparsers.add_parser(
        "workflow", help="inspect workflow files and convert them to API prompts",
        description="Inspect UI/API workflows, PNG/WebP images with metadata and zip archives.")
    sub = workflow.add_subparsers(dest="workflow_command", metavar="ACTION", required=True)

    inspect = sub.add_parser("inspect", help="format, nodes, missing nodes, models and editable parameters",
                             description="Show what a workflow is and what it needs from a server.")
    inspect.add_argument("file", type=Path, help="workflow file (.json, .png, .webp or .zip)")
    _add_source_options(inspect, required=False)
    inspect.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    inspect.set_defaults(func=inspect_command)

    convert = sub.add_parser("convert", help="UI workflows → API prompts, like the web editor's Export (API)",
                             description="Convert workflows to API-format prompts.")
    convert.add_argument("files", type=Path, nargs="+", metavar="FILE", help="workflow files")
    _add_source_options(convert, required=True)
    convert.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                         help="output file (one input) or directory (several inputs)")
    convert.add_argument("--force", action="store_true", help="replace output files that already exist")
    convert.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    convert.set_defaults(func=convert_command)


def _add_source_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--server", help="ComfyUI server URL or configured name to read node definitions from")
    group.add_argument("--object-info", type=Path, metavar="FILE",
                       help="saved /object_info answer (bare, or wrapped as {\"status\", \"body\"})")


def read_object_info_file(path: Path) -> dict[str, Any]:
    """Node definitions from a saved ``/object_info`` answer."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _SourceError(f"Cannot read {path}: {exc.strerror or exc}", exit_codes.USAGE) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _SourceError(f"{path} is not valid JSON ({exc})", exit_codes.USAGE) from None
    if isinstance(data, dict) and isinstance(data.get("body"), dict) and "status" in data:
        data = data["body"]
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise _SourceError(f"{path} is not an /object_info answer (expected {{class name: definition}})",
                           exit_codes.USAGE)
    return data


async def _server_source(args: argparse.Namespace, workflow: Workflow | None = None) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """object_info from a live server, and the files of the model folders ``workflow`` uses."""
    from pistachio_tui.cli.comfy_commands import resolve_server
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.errors import AuthRequired, ComfyError, ServerUnreachable

    url, headers = resolve_server(args)
    try:
        async with ComfyClient(url, headers=headers) as client:
            object_info = await client.object_info()
            folders = _model_folders(workflow, object_info) if workflow is not None else set()
            available = set(await client.models()) if folders else set()
            models = {folder: await client.models(folder) for folder in sorted(folders & available)}
    except (ServerUnreachable, AuthRequired) as exc:
        raise _SourceError(str(exc), exit_codes.UNREACHABLE) from None
    except ComfyError as exc:
        raise _SourceError(str(exc), exit_codes.FAILED) from None
    return object_info, models


def _model_folders(workflow: Workflow, object_info: dict[str, Any]) -> set[str]:
    from pistachio_tui.workflow.deps import analyse, canonical_folder

    needs = analyse(workflow, object_info)
    return {folder for m in needs.models if not m.unsafe and (folder := canonical_folder(m.folder))}


async def inspect_command(args: argparse.Namespace) -> int:
    from pistachio_tui.workflow.load import WorkflowError, load_workflows

    try:
        workflows = load_workflows(args.file)
    except WorkflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.input_error(args.file)
    reports = []
    try:
        file_info = read_object_info_file(args.object_info) if args.object_info is not None else None
    except _SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    for workflow in workflows:
        object_info: dict[str, Any] | None = file_info
        server_models: dict[str, list[str]] | None = None
        try:
            if args.server:
                object_info, server_models = await _server_source(args, workflow)
            reports.append(_inspection(workflow, object_info, server_models))
        except _SourceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.code
        except WorkflowError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exit_codes.REJECTED
    if args.json:
        payload = reports[0] if len(reports) == 1 else {"workflows": reports}
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        for i, report in enumerate(reports):
            if i:
                print()
            _print_inspection(report)
    return exit_codes.OK


def _inspection(workflow: Workflow, object_info: dict[str, Any] | None,
                server_models: dict[str, list[str]] | None) -> dict[str, Any]:
    """Everything ``inspect`` shows about one workflow, as JSON-ready data."""
    from pistachio_tui.workflow.deps import analyse
    from pistachio_tui.workflow.edit import find_params, find_ui_params

    report: dict[str, Any] = {"file": workflow.source, "name": workflow.name, "format": workflow.format}
    if workflow.ui is not None:
        graph = workflow.graph
        report["nodes"] = len(graph.root.nodes)
        report["subgraphs"] = len(graph.subgraphs)
    else:
        report["nodes"] = len(workflow.api or {})
        report["subgraphs"] = 0
    needs: Needs = analyse(workflow, object_info or {}, server_models)
    report["node_types"] = needs.node_types
    report["checked_against_server"] = object_info is not None
    report["missing_nodes"] = needs.missing_nodes if object_info is not None else None
    report["models"] = [asdict(m) for m in needs.models]
    if object_info is not None:
        params = find_ui_params(workflow, object_info) if workflow.format == "ui" else find_params(workflow.api or {})
    else:
        params = find_params(workflow.api) if workflow.api is not None else []
    report["params"] = [asdict(p) for p in params]
    return report


def _print_inspection(report: dict[str, Any]) -> None:
    out = sys.stdout
    print(f"{report['name']}  ({report['format']} format, {report['nodes']} nodes"
          f"{', %d subgraphs' % report['subgraphs'] if report['subgraphs'] else ''})", file=out)
    print(f"node types: {', '.join(report['node_types']) or '-'}", file=out)
    if report["missing_nodes"] is None:
        print("missing nodes: not checked (give --server or --object-info)", file=out)
    else:
        print(f"missing nodes: {', '.join(report['missing_nodes']) or 'none'}", file=out)
    print("models:" if report["models"] else "models: none referenced", file=out)
    for model in report["models"]:
        state = {True: "present", False: "MISSING", None: "unknown"}[model["present"]]
        flag = "  UNSAFE NAME" if model["unsafe"] else ""
        where = f"node {model['node_id']}" + (f".{model['input_name']}" if model["input_name"] else "")
        print(f"  [{state}] {model['folder'] or '?'}/{model['name']}  ({where}){flag}", file=out)
        if model["url"]:
            print(f"           {model['url']}", file=out)
    if report["params"]:
        print("editable:", file=out)
    for param in report["params"]:
        role = f" ({param['role']})" if param["role"] else ""
        value = param["value"]
        shown = value if not isinstance(value, str) or len(value) <= 60 else value[:57] + "..."
        print(f"  {param['node_id']:>8} {param['title']} · {param['kind']}{role} = {shown!r}", file=out)


async def convert_command(args: argparse.Namespace) -> int:
    from pistachio_tui.workflow.load import WorkflowError, load_workflows

    results: list[dict[str, Any]] = []
    loaded: list[tuple[Path, Workflow]] = []
    unusable: int | None = None  # the exit code for inputs that are no workflow, the worst first
    for path in args.files:
        try:
            loaded.extend((path, workflow) for workflow in load_workflows(path))
        except WorkflowError as exc:
            results.append({"file": str(path), "ok": False, "error": str(exc)})
            print(f"error: {exc}", file=sys.stderr)
            unusable = max(unusable or 0, exit_codes.input_error(path))
    if not loaded and unusable is not None:
        # Nothing to convert: the server is not asked, and the exit code is the files'.
        if args.json:
            print(json.dumps({"results": results}, indent=2, ensure_ascii=False))
        return unusable
    try:
        if args.object_info is not None:
            object_info = read_object_info_file(args.object_info)
        else:
            object_info, _ = await _server_source(args)
    except _SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    out: Path = args.output
    several = len(args.files) > 1 or len(loaded) > 1
    if several and out.exists() and not out.is_dir():
        print(f"error: {out} must be a directory when converting several workflows", file=sys.stderr)
        return exit_codes.USAGE
    used: set[str] = set()
    failed = False
    inputs = [path for path in args.files if path.exists()]
    for path, workflow in loaded:
        target = out / _output_name(workflow.name, used) if several else out
        refusal = _refuse_target(target, inputs, force=getattr(args, "force", False))
        if refusal is not None:
            print(f"error: {refusal}", file=sys.stderr)
            entry: dict[str, Any] = {"output": str(target), "ok": False, "error": refusal}
        else:
            entry = _convert_one(workflow, object_info, target)
        entry["file"] = workflow.source or str(path)
        results.append(entry)
        failed = failed or not entry["ok"]
    if args.json:
        print(json.dumps({"results": results}, indent=2, ensure_ascii=False))
    if unusable is not None:
        return unusable
    return exit_codes.FAILED if failed else exit_codes.OK


def _output_name(stem: str, used: set[str]) -> str:
    """``<stem>.api.json``, numbered when two inputs share a stem."""
    name, n = f"{stem}.api.json", 1
    while name in used:
        n += 1
        name = f"{stem}-{n}.api.json"
    used.add(name)
    return name


def _refuse_target(target: Path, inputs: list[Path], *, force: bool) -> str | None:
    """Why ``target`` must not be written, or None: it is one of the inputs (never replaced,
    even with ``--force``), or it exists and ``--force`` was not given."""
    for source in inputs:
        try:
            same = target.exists() and target.samefile(source)
        except OSError:
            same = False
        if same or target.resolve() == source.resolve():
            return f"{target} is one of the inputs; refusing to overwrite it (choose another -o)"
    if target.exists() and not force:
        return f"{target} already exists; give --force to replace it"
    return None


def _convert_one(workflow: Workflow, object_info: dict[str, Any], target: Path) -> dict[str, Any]:
    from pistachio_tui.safefiles import atomic_write
    from pistachio_tui.workflow.convert import to_api
    from pistachio_tui.workflow.load import WorkflowError

    entry: dict[str, Any] = {"output": str(target), "ok": False}
    try:
        result = to_api(workflow, object_info)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result.prompt, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        atomic_write(target, text.encode("utf-8"))
    except WorkflowError as exc:
        # The error names the file already (``file: $.path: reason``).
        entry["error"] = str(exc.with_file(workflow.source))
        print(f"error: {entry['error']}", file=sys.stderr)
        return entry
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        entry["error"] = f"cannot write {target}: {reason}"
        print(f"error: {workflow.source}: {entry['error']}", file=sys.stderr)
        return entry
    entry.update(ok=True, nodes=len(result.prompt), unknown_types=result.unknown_types, warnings=result.warnings)
    note = f" (unknown node types: {', '.join(result.unknown_types)})" if result.unknown_types else ""
    print(f"{workflow.source} → {target}: {len(result.prompt)} nodes{note}", file=sys.stderr)
    for warning in result.warnings:
        print(f"  warning: {warning}", file=sys.stderr)
    return entry
