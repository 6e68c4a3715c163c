"""``pistachio batch``: one batch over many ComfyUI servers and RunPod serverless endpoints."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from pistachio_tui.cli import exit_codes
from pistachio_tui.cli.remedies import cli_remedy
from pistachio_tui.format import money
from pistachio_tui.remedies import needs_of
from pistachio_tui.workflow.seeds import SEED_MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="run one batch across several servers and serverless endpoints",
        description=(
            "Run a batch (seed sweep, prompt list, parameter grid, wildcards) over every given "
            "target. Finished jobs are journalled in the output folder: run the same command "
            "again after Ctrl-C or a crash and only the unfinished jobs run."
        ),
    )
    parser.add_argument("file", type=Path, help="a batch TOML file, or a workflow (API/UI JSON or PNG)")
    parser.add_argument("--server", action="append", default=[], help="ComfyUI server URL or configured name (repeatable)")
    parser.add_argument("--endpoint", action="append", default=[], help="RunPod serverless endpoint id (repeatable)")
    parser.add_argument("--count", type=int, help="jobs per prompt and grid point")
    parser.add_argument("--seed-mode", choices=SEED_MODES, help="how each job's seed is chosen")
    parser.add_argument("--start-seed", type=int, help="first seed for increment/fixed")
    parser.add_argument("--batch-seed", type=int, help="seed of the batch's random choices (same seed, same jobs)")
    parser.add_argument("--prompts", type=Path, help="file with one prompt per line")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2", help="vary a parameter (repeatable)")
    parser.add_argument("--wildcards", type=Path, help="folder of NAME.txt files for __NAME__ in prompts")
    parser.add_argument("--object-info", type=Path, metavar="FILE",
                        help="a saved /object_info to convert a UI workflow with when no --server answers")
    parser.add_argument("--max-ahead", type=int, default=2, help="jobs queued at once on each ComfyUI server")
    parser.add_argument("-o", "--out", type=Path,
                        help="output folder (files, manifest, journal); default: the batch file's 'output', "
                             "else a folder named after the batch in the user's data dir")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run_batch)


def _spec(args: argparse.Namespace):
    from pistachio_tui.fleet.spec import BatchSpec, EndpointSpec, load_batch_file, parse_grid_flag, read_prompts_file

    if args.file.suffix.lower() == ".toml":
        spec = load_batch_file(args.file)
    else:
        spec = BatchSpec(workflow=args.file)
    overrides = {
        "count": args.count, "seed_mode": args.seed_mode, "start_seed": args.start_seed,
        "batch_seed": args.batch_seed, "wildcard_dir": args.wildcards,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(spec, name, value)
    if args.prompts:
        spec.prompts = read_prompts_file(args.prompts)
    for flag in args.grid:
        name, values = parse_grid_flag(flag)
        spec.grid[name] = values
    # An endpoint the file lists keeps the price the file gives it.
    listed = {e.id for e in spec.endpoints}
    spec.endpoints += [EndpointSpec(endpoint) for endpoint in dict.fromkeys(args.endpoint) if endpoint not in listed]
    spec.__post_init__()
    return spec


def _servers(args: argparse.Namespace):
    """``--server`` values as server configs: a configured name keeps its name and headers."""
    from pistachio_tui.cli.comfy_commands import resolve_server
    from pistachio_tui.config import ServerConfig, load_settings

    settings = load_settings(Path(args.config) if getattr(args, "config", None) else None)
    servers = []
    for wanted in args.server:
        configured = settings.server(wanted)
        if configured is None:
            url, headers = resolve_server(argparse.Namespace(server=wanted, config=args.config))
            configured = ServerConfig(url, url, headers)
        servers.append(configured)
    return servers


def _print_event(event) -> None:
    if event.kind in ("retry", "failed", "target_down", "target_excluded"):
        who = f" {event.job}" if event.job else ""
        print(f"{event.kind}{who} on {event.target}: {event.message}", file=sys.stderr)


def _object_info(path: Path | None) -> dict | None:
    from pistachio_tui.fleet.build import BatchSetupError

    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BatchSetupError(f"--object-info {path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise BatchSetupError(f"--object-info {path}: not a node list (save it from http://<server>/object_info)")
    return data


async def run_batch(args: argparse.Namespace) -> int:
    from pistachio_tui.config import ConfigError
    from pistachio_tui.fleet.build import BatchSetupError, NoReachableTarget, prepare_batch
    from pistachio_tui.fleet.contact_sheet import make_contact_sheet
    from pistachio_tui.fleet.journal import BatchFolderError
    from pistachio_tui.fleet.spec import BatchSpecError
    from pistachio_tui.workflow.errors import WorkflowError

    if args.max_ahead < 1:
        print(f"batch: --max-ahead must be at least 1, not {args.max_ahead}", file=sys.stderr)
        return exit_codes.USAGE
    try:
        with open(args.file, "rb"):
            pass
    except OSError as exc:
        print(f"batch: {args.file}: cannot read the file ({exc.strerror or exc})", file=sys.stderr)
        return exit_codes.NO_INPUT
    try:
        spec = _spec(args)
        servers = _servers(args)
        if not servers and not spec.endpoints:
            print("give at least one --server or --endpoint (or endpoints in the batch file)", file=sys.stderr)
            return exit_codes.USAGE
        prepared = await prepare_batch(spec, servers, out_dir=args.out, max_ahead=args.max_ahead,
                                       object_info=_object_info(args.object_info))
    except NoReachableTarget as exc:
        print(f"batch: {exc}", file=sys.stderr)
        return exit_codes.UNREACHABLE
    except (BatchSpecError, BatchSetupError, ConfigError) as exc:
        print(f"batch: {exc}{cli_remedy(needs_of(exc))}", file=sys.stderr)
        return exit_codes.USAGE
    except WorkflowError as exc:
        print(f"batch: {exc}", file=sys.stderr)
        return exit_codes.REJECTED
    for note in prepared.notes:
        print(note, file=sys.stderr)
    jobs = prepared.jobs
    done_count = 0

    def on_event(event) -> None:
        nonlocal done_count
        if event.kind == "done":
            done_count += 1
            print(f"\r{done_count}/{len(jobs)} done", end="", file=sys.stderr, flush=True)
        else:
            _print_event(event)

    runner = prepared.runner(on_event)
    try:
        task = asyncio.ensure_future(runner.run())
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            await runner.cancel()
            result = await task
        print(file=sys.stderr)
        sheet = await asyncio.to_thread(make_contact_sheet, prepared.out_dir, result.records)
    except BatchFolderError as exc:
        print(f"batch: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    finally:
        await runner.aclose()
    interrupted = result.stranded_reason == "interrupted"
    targets = {name: {"done": s.done, "busy_s": round(s.busy_s, 2), "down": s.down,
                      "cost": result.cost["targets"].get(name)}
               for name, s in result.targets.items()}
    summary = {
        "done": len(result.records), "total": len(jobs), "failed": result.failed, "stranded": result.stranded,
        "stranded_reason": result.stranded_reason or None,
        "manifest": str(result.manifest), "contact_sheet": str(sheet) if sheet else None,
        "targets": targets,
        "cost": result.cost,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['done']}/{summary['total']} jobs done → {prepared.out_dir}")
        for name, stats in targets.items():
            print(f"  {name}: {stats['done']} done" + (f" (left: {stats['down']})" if stats["down"] else ""))
        if result.cost["targets"]:
            print(f"  cost so far {money(result.cost['total'], 4)}")
        if result.failed:
            print(f"  {len(result.failed)} failed; see {result.manifest}")
        if result.stranded:
            print(f"  {len(result.stranded)} not run ({result.stranded_reason}); run the same command to resume")
    if interrupted:
        return exit_codes.INTERRUPTED
    if not result.records and len(jobs):
        return exit_codes.UNREACHABLE if all(s.down for s in result.targets.values()) else exit_codes.FAILED
    return exit_codes.OK if result.ok else exit_codes.FAILED
