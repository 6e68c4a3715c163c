"""``pistachio train``: watch DiffusionPipe runs, pick and promote an epoch, prepare runs.

::

    pistachio train watch RUN [--log FILE] [--json] [--follow]
    pistachio train best RUN [--patience K] [--tolerance T] [--json]
    pistachio train promote RUN (--checkpoint epoch7|step15 | --epoch N) [--comfy PATH] [--name NAME]
                                [--overwrite] [--json]
    pistachio train prepare DATASET --trigger WORD --gpu {h200,a100,4090} --model {wan14b,flux,sdxl} [-o OUT]

RUN is a run folder, an output folder (its newest run), a folder written by
``prepare`` (the newest run under it; ``watch`` waits for the first one) or a
console log.
Exit codes: bad RUN/DATASET or arguments → USAGE; a checkpoint that cannot be
promoted or a refused overwrite → REJECTED; a failed run or no eval data → FAILED.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pistachio_tui.cli import exit_codes

_GPUS = ("h200", "a100", "4090")
_MODELS = ("wan14b", "flux", "sdxl")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="DiffusionPipe LoRA runs: watch, best epoch, promote, prepare",
        description="Watch DiffusionPipe runs, pick the epoch to keep, copy it into ComfyUI, prepare new runs.")
    parser.set_defaults(func=lambda args: _usage(parser))
    actions = parser.add_subparsers(dest="train_action", metavar="ACTION")

    watch = actions.add_parser("watch", help="epoch, step, loss, ETA, checkpoints and errors of a run")
    _run_args(watch)
    watch.add_argument("--follow", action="store_true", help="keep printing as the run goes on (Ctrl-C stops)")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --follow")
    watch.set_defaults(func=run_watch)

    best = actions.add_parser("best", help="the save (epochN/ or stepN/) with the lowest eval loss, and where "
                                           "it stopped improving")
    _run_args(best)
    best.add_argument("--patience", type=int, default=3, metavar="K",
                      help="evals without improvement that mean converged (default 3)")
    best.add_argument("--tolerance", type=float, default=0.0,
                      help="relative change that still counts as flat (e.g. 0.01 = 1%%)")
    best.set_defaults(func=run_best)

    promote = actions.add_parser("promote", help="copy a saved LoRA (epochN/ or stepN/) into ComfyUI's models/loras")
    _run_args(promote)
    which = promote.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", metavar="NAME", help="save folder to promote: epoch7, step15, ...")
    which.add_argument("--epoch", type=int, metavar="N", help="same as --checkpoint epochN")
    promote.add_argument("--comfy", type=Path, help="ComfyUI folder (default: comfy_dir from the settings)")
    promote.add_argument("--name", help="run title in the file name instead of the prepare folder's name")
    promote.add_argument("--overwrite", action="store_true", help="replace an existing file of that name")
    promote.set_defaults(func=run_promote)

    prepare = actions.add_parser("prepare", help="split a dataset, write DiffusionPipe TOMLs, print the command")
    prepare.add_argument("dataset", type=Path, metavar="DATASET", help="folder of images with .txt captions")
    prepare.add_argument("--trigger", required=True, metavar="WORD", help="token put first in every caption")
    prepare.add_argument("--gpu", required=True, choices=_GPUS)
    prepare.add_argument("--model", required=True, choices=_MODELS)
    prepare.add_argument("-o", "--out", type=Path, help="where to write (default: DATASET_lora next to DATASET)")
    prepare.add_argument("--epochs", type=int, default=30)
    prepare.add_argument("--num-gpus", type=int, default=1)
    prepare.add_argument("--model-path", help="path of the base model weights for [model]")
    prepare.add_argument("--copy", action="store_true", help="copy images instead of hardlinking them")
    prepare.add_argument("--json", action="store_true", help="print JSON on stdout")
    prepare.set_defaults(func=run_prepare)


def _run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder, output folder (newest run) or log file")
    parser.add_argument("--log", type=Path, help="console log of the run, if not found next to it")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return exit_codes.USAGE


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _open_watcher(args: argparse.Namespace):
    from pistachio_tui.training.watch import RunWatcher

    return RunWatcher(args.run, log=args.log)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "—" if value is None else format(value, spec)


def _status_line(state) -> str:
    if state.step is None and state.status in ("waiting", "caching"):
        doing = f"caching latents ({state.caching})" if state.status == "caching" else "no step yet"
        return f"{state.status:<9} {doing}; the run folder appears once caching and model loading are done"
    epoch = f"{state.epoch or '—'}/{state.total_epochs or '?'}"
    eta = "" if state.status in ("failed", "stopped", "quit") else f"  ETA {_duration(state.eta_s)}"
    return (f"{state.status:<9} epoch {epoch}  step {state.step or '—'}/{state.total_steps or '?'}  "
            f"loss {_fmt(state.loss)} (avg {_fmt(state.loss_ema)})  "
            f"{_fmt(state.it_per_s, '.3f')} it/s{eta}")


def _report(state) -> str:
    lines = [f"run {state.name}", _status_line(state)]
    if state.lr:
        lines.append(f"lr {', '.join(f'{x:.3g}' for x in state.lr)}  steps/epoch {state.steps_per_epoch or '—'}")
    evals = state.eval_loss_by_epoch()
    if evals:
        last = list(evals.items())[-3:]
        lines.append(f"eval loss ({state.eval_name}): " + ", ".join(f"e{e} {v:.4g}" for e, v in last))
    ck = state.checkpoints
    if ck is not None:
        steps = [s.step for s in ck.saved if s.ok and s.step is not None]
        saved = f"saved epochs: {_ranges(ck.usable_epochs) or 'none'}"
        if steps:
            saved += f"; saved steps: {', '.join(map(str, steps))}"
        lines.append(saved + (f"; resume states: global_step{ck.global_steps[-1]} (+{len(ck.global_steps) - 1} older)"
                              if ck.global_steps else ""))
        lines.extend(f"  unusable {s.name}: {s.problem}" for s in ck.saved if not s.ok)
    if state.ended_reason:
        lines.append(f"ended: {state.ended_reason}")
    if state.nan_count:
        lines.append(f"NaN/inf loss on {state.nan_count} steps")
    for err in state.errors:
        lines.append(f"error [{err.kind}] line {err.line_no}: {err.text}")
        lines.append(f"  → {err.suggestion}")
    return "\n".join(lines)


def _ranges(numbers: list[int]) -> str:
    parts: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if parts and parts[-1][1] == n - 1:
            parts[-1] = (parts[-1][0], n)
        else:
            parts.append((n, n))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


async def run_watch(args: argparse.Namespace) -> int:
    import asyncio

    from pistachio_tui.training.errors import TrainingError

    try:
        watcher = _open_watcher(args)
    except TrainingError as exc:
        _say(f"error: {exc}")
        return exit_codes.USAGE
    state = None
    try:
        if not args.follow:
            state = await asyncio.to_thread(watcher.poll)
            print(json.dumps(state.to_dict(), indent=2) if args.json else _report(state))
        else:
            async for state in watcher.watch(args.interval):
                print(json.dumps(state.to_dict()) if args.json else _status_line(state), flush=True)
                if state.ended:
                    if not args.json:
                        print(_report(state))
                    break
    finally:
        watcher.close()
    return exit_codes.FAILED if state is not None and state.status in ("failed", "stopped") else exit_codes.OK


async def run_best(args: argparse.Namespace) -> int:
    import asyncio

    from pistachio_tui.training.errors import TrainingError

    if args.patience < 1:
        _say("error: --patience must be at least 1")
        return exit_codes.USAGE
    try:
        watcher = _open_watcher(args)
    except TrainingError as exc:
        _say(f"error: {exc}")
        return exit_codes.USAGE
    try:
        state = await asyncio.to_thread(watcher.poll)
    finally:
        watcher.close()
    result = state.convergence(patience=args.patience, tolerance=args.tolerance)
    candidates = state.candidates()
    if args.json:
        print(json.dumps({
            "run": state.name, "best": result.best, "best_step": result.best_step,
            "best_epoch": result.best_epoch, "best_loss": result.best_loss,
            "stop_step": result.stop_step, "trend": result.trend, "patience": result.patience,
            "explanation": result.explanation, "eval_name": state.eval_name,
            "eval_loss_by_step": {str(k): v for k, v in state.eval_loss_by_step().items()},
            "checkpoints": [{"name": c.name, "step": c.step, "eval_loss": c.eval_loss, "ok": c.ok}
                            for c in candidates],
            "saved_epochs": state.saved_epochs,
        }, indent=2))
    else:
        print(result.explanation)
        for c in candidates:
            mark = "★" if c.name == result.best else " "
            loss = "no eval at this step" if c.eval_loss is None else f"{c.eval_loss:.4f}"
            step = "?" if c.step is None else str(c.step)
            print(f"{mark} {c.name:<10} step {step:>6}  {loss}" + ("" if c.ok else f"  unusable: {c.saved.problem}"))
        if result.best is not None and state.run_dir is not None:
            _say(f"promote it: pistachio train promote {state.run_dir} --checkpoint {result.best}")
    return exit_codes.OK if result.best is not None else exit_codes.FAILED


def run_promote(args: argparse.Namespace) -> int:
    from pistachio_tui.training.errors import CheckpointUnusable, PromoteRefused, TrainingError
    from pistachio_tui.training.promote import promote
    from pistachio_tui.training.runs import resolve_run

    comfy = args.comfy or _settings_comfy_dir(args)
    if comfy is None:
        _say("error: no ComfyUI folder — pass --comfy PATH or set comfy_dir in the settings")
        return exit_codes.USAGE
    try:
        paths = resolve_run(args.run, args.log)
        if paths.run_dir is None:
            _say(f"error: {args.run} is a log without a run folder next to it — give the run folder")
            return exit_codes.USAGE
        checkpoint = args.checkpoint if args.checkpoint is not None else args.epoch
        result = promote(paths.run_dir, checkpoint, comfy.expanduser(), name=args.name, overwrite=args.overwrite)
    except (CheckpointUnusable, PromoteRefused) as exc:
        _say(f"error: {exc}")
        return exit_codes.REJECTED
    except TrainingError as exc:
        _say(f"error: {exc}")
        return exit_codes.USAGE
    if args.json:
        print(json.dumps({"path": str(result.path), "size": result.size, "sha256": result.sha256,
                          "trigger": result.trigger, "replaced": result.replaced}, indent=2))
    else:
        print(result.path)
        _say(f"copied {result.size} bytes, sha256 {result.sha256[:16]}…"
             + (f"; trigger word: {result.trigger}" if result.trigger else ""))
    return exit_codes.OK


def _settings_comfy_dir(args: argparse.Namespace) -> Path | None:
    from pistachio_tui.config import ConfigError, load_settings

    try:
        return load_settings(Path(args.config) if getattr(args, "config", None) else None).comfy_dir
    except ConfigError:
        return None


def run_prepare(args: argparse.Namespace) -> int:
    from pistachio_tui.training.errors import TrainingError
    from pistachio_tui.training.prepare import prepare_run

    out = args.out or args.dataset.parent / f"{args.dataset.name}_lora"
    try:
        run = prepare_run(args.dataset, out, trigger=args.trigger, gpu=args.gpu, model=args.model,
                          epochs=args.epochs, num_gpus=args.num_gpus, model_path=args.model_path,
                          link=not args.copy)
    except TrainingError as exc:
        _say(f"error: {exc}")
        return exit_codes.USAGE
    choices = run.preset.choices()
    if args.json:
        print(json.dumps(_prepare_json(run, choices), indent=2))
        return exit_codes.OK
    print(f"{run.preset.model.name} on {run.preset.gpu.name}: "
          f"{len(run.dataset.train)} train / {len(run.dataset.eval)} eval ({run.dataset.report.summary()})")
    for name, choice in choices.items():
        value = "(not set)" if choice.value is None else choice.value
        print(f"  {name} = {value}: {choice.why}")
    for warning in run.warnings:
        print(f"warning: {warning}")
    print(f"configs: {run.main_toml}, {run.dataset_toml}, {run.eval_toml}")
    print("launch (from the diffusion-pipe folder):")
    print(f"  {run.launch_command}")
    print("resume the newest run:")
    print(f"  {run.resume_command}")
    return exit_codes.OK


def _prepare_json(run, choices) -> dict[str, Any]:
    return {
        "gpu": run.preset.gpu.key, "model": run.preset.model.key,
        "train": run.dataset.train, "eval": run.dataset.eval,
        "train_dir": str(run.dataset.train_dir), "eval_dir": str(run.dataset.eval_dir),
        "main_toml": str(run.main_toml), "dataset_toml": str(run.dataset_toml),
        "eval_toml": str(run.eval_toml),
        "choices": {k: {"value": c.value, "why": c.why} for k, c in choices.items()},
        "warnings": run.warnings, "launch": run.launch_command, "resume": run.resume_command,
    }
