"""``pistachio train``: watch DiffusionPipe runs, pick and promote an epoch, prepare runs.

::

    pistachio train watch RUN [--log FILE] [--json] [--follow]
    pistachio train best RUN [--patience K] [--tolerance T] [--json]
    pistachio train promote RUN (--checkpoint epoch7|step15 | --epoch N) [--comfy PATH] [--name NAME]
                                [--overwrite] [--json]
    pistachio train prepare DATASET --trigger WORD --model {wan14b,flux,sdxl} [--gpu CARD] [--num-gpus N]
                            [-o OUT] [--repeats N] [--eval-repeats N] [--comfy-models DIR]
                            [--model-path DIR] [--wandb [RUN_NAME]] [--json]

    pistachio train start CONFIG [--detach|--tmux] [--gpu CARD] [--num-gpus N] [--diffusion-pipe DIR]
    pistachio train tournament RUN --server URL --workflow WF [--comfy DIR] [--prompt TEXT]... [--around N]
    pistachio train captions DATASET [--trigger WORD] [--captioner CMD] [--set NAME=TEXT]... [--json]
    pistachio train resume RUN [--detach|--tmux] [--gpu CARD] [--num-gpus N] [--diffusion-pipe DIR]

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
from pistachio_tui.cli.remedies import cli_remedy
from pistachio_tui.format import duration, money

_GPUS = ("3090", "4090", "5090", "a6000", "a40", "l40s", "a100", "h100", "h200")
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
    watch.add_argument("--interval", type=exit_codes.positive_number, default=2.0, help="seconds between polls with --follow")
    watch.set_defaults(func=run_watch)

    best = actions.add_parser("best", help="the save (epochN/ or stepN/) with the lowest eval loss, and where "
                                           "it stopped improving")
    _run_args(best)
    best.add_argument("--patience", type=int, default=3, metavar="K",
                      help="evals without improvement that mean converged (default 3)")
    best.add_argument("--tolerance", type=exit_codes.non_negative_number, default=0.0,
                      help="relative change that still counts as flat (e.g. 0.01 = 1%%)")
    best.set_defaults(func=run_best)

    promote = actions.add_parser("promote", help="copy a saved LoRA (epochN/ or stepN/) into ComfyUI's models/loras")
    _run_args(promote)
    which = promote.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", metavar="NAME", help="save folder to promote: epoch7, step15, ...")
    which.add_argument("--epoch", type=int, metavar="N", help="same as --checkpoint epochN")
    promote.add_argument("--comfy", type=Path, help="ComfyUI folder (default: comfy_dir from the settings)")
    promote.add_argument("--remote", metavar="USER@HOST:/PATH", help="a ComfyUI folder on a pod, over SSH "
                         "(e.g. root@203.0.113.7:/workspace/ComfyUI)")
    promote.add_argument("--ssh-port", type=int, help="SSH port of --remote (RunPod shows it in the pod's SSH "
                         "command)")
    promote.add_argument("--ssh-key", type=Path, help="SSH private key for --remote")
    promote.add_argument("--name", help="run title in the file name instead of the prepare folder's name")
    promote.add_argument("--overwrite", action="store_true", help="replace an existing file of that name")
    promote.set_defaults(func=run_promote)

    prepare = actions.add_parser("prepare", help="split a dataset, work out buckets and steps, write DiffusionPipe "
                                                 "TOMLs, print the command")
    prepare.add_argument("dataset", type=Path, metavar="DATASET", help="folder of images/videos with .txt captions")
    prepare.add_argument("--trigger", required=True, metavar="WORD", help="token put first in every caption")
    prepare.add_argument("--model", required=True, choices=_MODELS)
    prepare.add_argument("--gpu", choices=_GPUS, help="card to train on (default: this machine's, from NVML)")
    prepare.add_argument("--num-gpus", type=int, help="GPUs for data parallel training (default: 1, or all "
                                                      "of this machine's when --gpu is not given)")
    prepare.add_argument("-o", "--out", type=Path, help="where to write (default: DATASET_lora next to DATASET)")
    prepare.add_argument("--epochs", type=int, default=30)
    prepare.add_argument("--repeats", type=int, metavar="N", help="num_repeats of the training set "
                                                                 "(default: the smallest that drops nothing)")
    prepare.add_argument("--eval-repeats", type=int, metavar="N", help="num_repeats of the eval set "
                                                                      "(default: the smallest that drops nothing)")
    prepare.add_argument("--comfy-models", type=Path, metavar="DIR",
                         help="ComfyUI models/ folder to take the weights from (default: comfy_dir/models "
                              "from the settings)")
    prepare.add_argument("--model-path", type=Path, metavar="DIR",
                         help="the model's official folder (Wan: ckpt_path; Flux: diffusers_path)")
    prepare.add_argument("--wandb", nargs="?", const="", metavar="RUN_NAME",
                         help="also log to Weights & Biases (key from WANDB_API_KEY); TensorBoard stays on")
    prepare.add_argument("--copy", action="store_true", help="copy images instead of hardlinking them")
    prepare.add_argument("--json", action="store_true", help="print JSON on stdout")
    prepare.set_defaults(func=run_prepare)

    start = actions.add_parser("start", help="start a run from its main TOML, console kept in the run folder")
    start.add_argument("config", type=Path, metavar="CONFIG", help="the main TOML (e.g. from prepare)")
    _launch_args(start)
    start.set_defaults(func=run_start)

    resume = actions.add_parser("resume", help="resume a run from its newest resume state (global_stepN)")
    resume.add_argument("run", type=Path, metavar="RUN", help="the run folder (output_dir/YYYYMMDD_HH-MM-SS)")
    _launch_args(resume)
    resume.set_defaults(func=run_resume)

    captions = actions.add_parser("captions", help="every image with its caption; flags missing, empty, "
                                                   "duplicate and trigger-less captions; fills gaps")
    captions.add_argument("dataset", type=Path, metavar="DATASET")
    captions.add_argument("--trigger", metavar="WORD", help="the trigger word each caption should hold")
    captions.add_argument("--captioner", metavar="CMD", help="command that prints a caption for {image} "
                          "(e.g. JoyCaption's script); run on the images without a caption")
    captions.add_argument("--set", action="append", default=[], metavar="NAME=TEXT",
                          help="write one caption (repeat); the trigger word goes first")
    captions.add_argument("--json", action="store_true", help="print JSON on stdout")
    captions.set_defaults(func=run_captions)

    tour = actions.add_parser("tournament", help="render the saves around the eval minimum side by side "
                                                 "through a ComfyUI server; writes a contact sheet")
    _run_args(tour)
    tour.add_argument("--server", action="append", required=True, metavar="URL",
                      help="ComfyUI server (repeat for a fleet); its loras folder must be reachable (--comfy)")
    tour.add_argument("--workflow", type=Path, required=True, metavar="WF", help="a workflow with a LoRA loader")
    tour.add_argument("--comfy", type=Path, help="the server's ComfyUI folder (default: comfy_dir from the settings)")
    tour.add_argument("--prompt", action="append", metavar="TEXT", help="a prompt (repeat; the trigger word is "
                      "added when missing; default: three portrait/full-body prompts)")
    tour.add_argument("--checkpoint", action="append", metavar="NAME", help="saves to compare (default: the best "
                      "and --around saves on each side)")
    tour.add_argument("--around", type=int, default=2, metavar="N")
    tour.add_argument("--seed", type=int, default=1234)
    tour.add_argument("-o", "--out", type=Path, help="output folder (default: RUN/tournament)")
    tour.set_defaults(func=run_tournament_cmd)


def _launch_args(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--detach", action="store_true", help="run in the background; survives logging out")
    where.add_argument("--tmux", action="store_true", help="run in a new tmux session; survives logging out")
    parser.add_argument("--gpu", choices=_GPUS, help="card (decides the NCCL variables; default: NVML)")
    parser.add_argument("--num-gpus", type=int, help="GPUs to use (default: all of this machine's)")
    parser.add_argument("--diffusion-pipe", type=Path, metavar="DIR", help="the diffusion-pipe checkout "
                        "(default: $DIFFUSION_PIPE_DIR, ~/diffusion-pipe or /workspace/diffusion-pipe)")
    parser.add_argument("--dry-run", action="store_true", help="print the command and the log path only")


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


async def _read_once(args: argparse.Namespace):
    """The run's state read once (in a thread), or None after saying why it cannot be read."""
    import asyncio

    from pistachio_tui.training.errors import TrainingError

    try:
        watcher = _open_watcher(args)
    except TrainingError as exc:
        _say(f"error: {exc}")
        return None
    try:
        return await asyncio.to_thread(watcher.poll)
    finally:
        watcher.close()


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "—" if value is None else format(value, spec)


def _status_line(state) -> str:
    if state.step is None and state.status in ("waiting", "caching"):
        doing = f"caching {state.caching}" if state.status == "caching" else "no step yet"
        return f"{state.status:<9} {doing}; the run folder appears once caching and model loading are done"
    epoch = f"{state.epoch or '—'}/{state.total_epochs or '?'}"
    eta = "" if state.status in ("failed", "stopped", "quit") else f"  ETA {duration(state.eta_s)}"
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


    if args.patience < 1:
        _say("error: --patience must be at least 1")
        return exit_codes.USAGE
    state = await _read_once(args)
    if state is None:
        return exit_codes.USAGE
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
    from pistachio_tui.training.promote import RemoteComfy, promote, promote_remote
    from pistachio_tui.training.runs import resolve_run

    comfy = None if args.remote else args.comfy or _settings_comfy_dir(args)
    if comfy is None and not args.remote:
        _say("error: no ComfyUI folder — pass --comfy PATH or --remote USER@HOST:/PATH, or set comfy_dir in the "
             "settings")
        return exit_codes.USAGE
    try:
        paths = resolve_run(args.run, args.log)
        if paths.run_dir is None:
            _say(f"error: {args.run} is a log without a run folder next to it — give the run folder")
            return exit_codes.USAGE
        checkpoint = args.checkpoint if args.checkpoint is not None else args.epoch
        if comfy is None:
            remote = RemoteComfy.parse(args.remote, args.ssh_port, args.ssh_key)
            result = promote_remote(paths.run_dir, checkpoint, remote, name=args.name, overwrite=args.overwrite)
        else:
            result = promote(paths.run_dir, checkpoint, comfy.expanduser(), name=args.name,
                             overwrite=args.overwrite)
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


def _gpu_choice(args: argparse.Namespace) -> tuple[Any, int] | None:
    from pistachio_tui.training.presets import GPUS, detect_gpu

    if args.gpu:
        return GPUS[args.gpu], args.num_gpus or 1
    detected = detect_gpu()
    if detected is None:
        return None
    card, count = detected
    _say(f"GPU: {card.name} ×{count} (found on this machine)")
    return card, args.num_gpus or count


async def _price_per_hour(card) -> float | None:
    """On-demand $/h of one such card on RunPod, when an API key is set; None otherwise."""
    import asyncio

    from pistachio_tui.config import ConfigError, get_secret
    from pistachio_tui.runpod.api import RunPodClient
    from pistachio_tui.runpod.errors import RunPodError

    try:
        key = get_secret("RUNPOD_API_KEY")
    except ConfigError:
        return None
    if not key or not card.runpod_name:
        return None
    try:
        async with RunPodClient(key) as client:
            types = await asyncio.wait_for(client.gpu_types(), 15)
    except (RunPodError, TimeoutError, OSError):
        return None
    match = [t for t in types if card.runpod_name.lower() in t.display_name.lower()]
    return min((t.on_demand_price for t in match if t.on_demand_price), default=None)


async def run_prepare(args: argparse.Namespace) -> int:
    import asyncio

    from pistachio_tui.training.errors import TrainingError
    from pistachio_tui.training.prepare import prepare_run

    choice = _gpu_choice(args)
    if choice is None:
        _say("error: no NVIDIA GPU found here — pass --gpu (" + ", ".join(_GPUS) + ")")
        return exit_codes.USAGE
    card, num_gpus = choice
    out = args.out or args.dataset.parent / f"{args.dataset.name}_lora"
    comfy_models = args.comfy_models
    if comfy_models is None and (comfy := _settings_comfy_dir(args)) is not None:
        comfy_models = comfy / "models"
    wandb = None if args.wandb is None else (args.wandb or out.name)
    try:
        run = await asyncio.to_thread(
            prepare_run, args.dataset, out, trigger=args.trigger, gpu=card, model=args.model,
            epochs=args.epochs, num_gpus=num_gpus, link=not args.copy, num_repeats=args.repeats,
            eval_repeats=args.eval_repeats, comfy_models=comfy_models, official_model=args.model_path,
            wandb=wandb)
    except TrainingError as exc:
        _say(f"error: {exc}")
        return exit_codes.USAGE
    price = await _price_per_hour(card)
    if args.json:
        print(json.dumps(_prepare_json(run, price), indent=2))
        return exit_codes.OK
    print(_prepare_report(run, price))
    return exit_codes.OK


def _prepare_report(run, price: float | None) -> str:
    plan, preset = run.plan, run.preset
    num_gpus = plan.num_gpus
    lines = [f"{preset.model.name} on {preset.gpu.name} ×{num_gpus}: "
             f"{len(run.dataset.train)} train / {len(run.dataset.eval)} eval ({run.dataset.report.summary()})"]
    for title, bucket_plan, repeats, batch in (("train", plan.train, plan.num_repeats, plan.global_batch),
                                               ("eval", plan.eval, plan.eval_repeats, plan.eval_global_batch)):
        lines.append(f"{title} buckets (num_repeats {repeats}, global batch {batch}): {bucket_plan.kept} of "
                     f"{bucket_plan.items} items kept")
        lines.extend(f"  {b.describe()}" for b in bucket_plan.buckets)
    if plan.frame_buckets != (1,):
        lines.append(f"frame buckets: {list(plan.frame_buckets)}")
    lines.append(f"steps: {plan.steps_per_epoch} per epoch × {plan.epochs} epochs = {plan.total_steps}; "
                 f"warm-up {plan.warmup_steps} steps")
    cost = f", about {money(plan.duration_s / 3600 * price * num_gpus)} at {money(price)}/h per GPU" if price else ""
    lines.append(f"expected duration: ~{duration(plan.duration_s)} (rough: {duration(plan.epoch_seconds)} "
                 f"per epoch + {duration(plan.eval_seconds)} per eval){cost}")
    for name, choice in preset.choices().items():
        value = "(not set)" if choice.value is None else choice.value
        lines.append(f"  {name} = {value}: {choice.why}")
    lines.extend(f"warning: {w}" for w in run.warnings)
    lines.append(f"configs: {run.main_toml}, {run.dataset_toml}, {run.eval_toml}")
    lines.append("launch (from the diffusion-pipe folder):")
    lines.append(f"  {run.launch_command}")
    lines.append("resume the newest run:")
    lines.append(f"  {run.resume_command}")
    lines.append(f"or let pistachio run it, console kept in the run folder: pistachio train start {run.main_toml} "
                 "--detach")
    lines.append(f"watch it: pistachio train watch {run.out_dir} --follow")
    return "\n".join(lines)


def _bucket_json(b) -> dict[str, Any]:
    return {"ar": b.ar, "width": b.width, "height": b.height, "frames": b.frames, "files": b.files,
            "items": b.items, "kept": b.kept, "dropped": b.dropped, "batches": b.batches}


def _prepare_json(run, price: float | None) -> dict[str, Any]:
    plan = run.plan
    return {
        "gpu": run.preset.gpu.key, "model": run.preset.model.key, "num_gpus": plan.num_gpus,
        "train": run.dataset.train, "eval": run.dataset.eval,
        "train_dir": str(run.dataset.train_dir), "eval_dir": str(run.dataset.eval_dir),
        "main_toml": str(run.main_toml), "dataset_toml": str(run.dataset_toml),
        "eval_toml": str(run.eval_toml),
        "num_repeats": plan.num_repeats, "eval_repeats": plan.eval_repeats,
        "global_batch": plan.global_batch, "frame_buckets": list(plan.frame_buckets),
        "train_buckets": [_bucket_json(b) for b in plan.train.buckets],
        "eval_buckets": [_bucket_json(b) for b in plan.eval.buckets],
        "steps_per_epoch": plan.steps_per_epoch, "total_steps": plan.total_steps,
        "warmup_steps": plan.warmup_steps, "duration_s": plan.duration_s, "price_per_hour": price,
        "model_paths": run.model_paths.keys, "missing": run.model_paths.missing,
        "choices": {k: {"value": c.value, "why": c.why} for k, c in run.preset.choices().items()},
        "warnings": run.warnings, "launch": run.launch_command, "resume": run.resume_command,
    }


def _launch(args: argparse.Namespace, plan_for) -> int:
    from pistachio_tui.remedies import needs_of
    from pistachio_tui.training.errors import TrainingError
    from pistachio_tui.training.launch import start
    from pistachio_tui.training.presets import GPUS, detect_gpu

    detected = None if args.gpu else detect_gpu()
    card = GPUS[args.gpu] if args.gpu else (detected[0] if detected else None)
    num_gpus = args.num_gpus or (detected[1] if detected else 1)
    try:
        plan = plan_for(card, num_gpus, args.diffusion_pipe)
    except TrainingError as exc:
        _say(f"error: {exc}{cli_remedy(needs_of(exc))}")
        return exit_codes.USAGE
    _say(f"command: {plan.shell_command}")
    _say(f"console log: {plan.log_path}" + ("" if plan.run_dir else " (linked into the run folder as train.log "
                                                                    "once the trainer creates it)"))
    if args.dry_run:
        return exit_codes.OK
    mode = "detach" if args.detach else "tmux" if args.tmux else "foreground"
    try:
        result = start(plan, mode=mode)
    except TrainingError as exc:
        _say(f"error: {exc}")
        return exit_codes.USAGE
    if mode == "foreground":
        return exit_codes.OK if result == 0 else exit_codes.FAILED
    _say(f"started ({'pid' if mode == 'detach' else 'tmux session'} {result}); watch it with: "
         f"pistachio train watch {plan.run_dir or plan.config.parent} --follow")
    return exit_codes.OK


def run_start(args: argparse.Namespace) -> int:
    from pistachio_tui.training.launch import plan_launch

    return _launch(args, lambda card, n, dp: plan_launch(args.config, gpu=card, num_gpus=n, diffusion_pipe=dp))


def run_resume(args: argparse.Namespace) -> int:
    from pistachio_tui.training.launch import plan_resume

    return _launch(args, lambda card, n, dp: plan_resume(args.run, gpu=card, num_gpus=n, diffusion_pipe=dp))


async def run_tournament_cmd(args: argparse.Namespace) -> int:

    from pistachio_tui.config import ServerConfig
    from pistachio_tui.training.promote import find_trigger
    from pistachio_tui.training.tournament import pick_contenders, run_tournament, tournament_prompts

    comfy = args.comfy or _settings_comfy_dir(args)
    if comfy is None:
        _say("error: the server's loras folder is needed — pass --comfy PATH (its ComfyUI folder)")
        return exit_codes.USAGE
    state = await _read_once(args)
    if state is None:
        return exit_codes.USAGE
    if state.run_dir is None:
        _say(f"error: {args.run} has no run folder with saves")
        return exit_codes.USAGE
    servers = [ServerConfig(f"server{i + 1}", exit_codes.server_url(url)) for i, url in enumerate(args.server)]
    try:
        contenders = args.checkpoint or pick_contenders(state, args.around)
        prompts = tournament_prompts(find_trigger(state.run_dir), args.prompt)
        _say(f"rendering {len(prompts)} prompts × {', '.join(contenders)} on {len(servers)} server(s)")
        result = await run_tournament(state.run_dir, contenders, prompts, workflow=args.workflow, servers=servers,
                                      loras_dir=comfy.expanduser() / "models" / "loras",
                                      out_dir=args.out or state.run_dir / "tournament", seed=args.seed,
                                      on_progress=_say)
    except Exception as exc:  # noqa: BLE001 — setup errors of fleet and training both carry a message
        message = getattr(exc, "message", None) or str(exc)
        _say(f"error: {message}")
        return exit_codes.FAILED
    if args.json:
        print(json.dumps({"checkpoints": contenders, "prompts": prompts, "sheet": _str_or_none(result.sheet),
                          "images": {f"{c}|{i}": str(p) for (c, i), p in result.images.items()},
                          "failed": result.failed}, indent=2))
    else:
        print(result.sheet or "no images came back")
        best = state.convergence().best
        _say(f"saves down, prompts across; eval loss picks {best}. Promote the one you like: "
             f"pistachio train promote {state.run_dir} --checkpoint NAME")
    return exit_codes.OK if result.images and not result.failed else exit_codes.FAILED


def _str_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


def run_captions(args: argparse.Namespace) -> int:
    from pistachio_tui.training.captions import review_captions, run_captioner, set_caption
    from pistachio_tui.training.errors import TrainingError

    try:
        for item in args.set:
            name, sep, text = item.partition("=")
            if not sep:
                _say(f"error: --set needs NAME=TEXT, not {item!r}")
                return exit_codes.USAGE
            set_caption(args.dataset, name, text, args.trigger)
        review = review_captions(args.dataset, args.trigger)
        if args.captioner and review.missing:
            def progress(done: int, total: int, name: str, caption: str | None) -> None:
                _say(f"[{done}/{total}] {name}: {caption if caption is not None else 'failed'}")

            results = run_captioner(args.dataset, args.captioner, review.missing, trigger=args.trigger,
                                    on_progress=progress)
            for name, value in results.items():
                if value.startswith("error: "):
                    _say(f"  {name}: {value}")
            review = review_captions(args.dataset, args.trigger)
    except TrainingError as exc:
        _say(f"error: {exc}")
        return exit_codes.USAGE
    if args.json:
        print(json.dumps({"folder": str(review.folder), "trigger": review.trigger,
                          "trigger_problem": review.trigger_problem,
                          "entries": [{"name": e.name, "caption": e.caption, "flags": e.flags}
                                      for e in review.entries]}, indent=2))
    else:
        for entry in review.entries:
            caption = "(no caption file)" if entry.caption is None else entry.caption or "(empty)"
            flags = f"  ⚠ {'; '.join(entry.flags)}" if entry.flags else ""
            print(f"{entry.name}: {caption}{flags}")
        print(review.summary())
        if review.trigger_problem:
            print(f"warning: {review.trigger_problem}")
    return exit_codes.OK if not review.flagged and not review.trigger_problem else exit_codes.REJECTED
