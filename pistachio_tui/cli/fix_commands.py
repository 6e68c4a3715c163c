"""``pistachio fix``: take a downloaded workflow to one the server accepts.

::

    pistachio fix WORKFLOW [--server URL|NAME] [--comfy-dir PATH] [-o OUT] [--yes] [--json]

Installs missing node packs through ComfyUI-Manager (restarting the server),
uses model files the server already has under another name (the corrected
workflow is saved to ``OUT``, by default ``<stem>.fixed.json`` beside the
original), downloads the other missing models (into ``--comfy-dir``'s
``models/`` when ComfyUI runs on this machine and reads that folder, else
through the Manager), then submits the prompt. Prints a
transcript, or with ``--json`` one JSON object per event and a final summary.
Exit codes: 0 accepted, 2 still not runnable or bad file, 3 server
unreachable, 64 bad settings. Run it again after an interruption: downloads
resume and earlier choices are reused.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pistachio_tui.cli import exit_codes
from pistachio_tui.cli.remedies import CLI_REMEDIES
from pistachio_tui.format import size
from pistachio_tui.redact import safe_url, scrub_data, scrub_urls

if TYPE_CHECKING:
    from pistachio_tui.fix.flow import FixEvent, FixOutcome
    from pistachio_tui.fix.models_search import ModelCandidate
    from pistachio_tui.workflow.deps import ModelNeed

#: In a log (not a terminal), repeated progress lines of one item are shown this often.
PLAIN_PROGRESS_INTERVAL = 5.0


def register(subparsers: argparse._SubParsersAction) -> None:
    fix = subparsers.add_parser(
        "fix", help="install missing nodes and models until a workflow runs",
        description="Install the node packs and models a workflow is missing, restart the server, "
                    "and submit the prompt once the server accepts it.")
    fix.add_argument("workflow", type=Path, help="workflow file (UI or API JSON, or a PNG/WebP with one)")
    fix.add_argument("--server", help="server URL or configured name (default: the first configured server)")
    fix.add_argument("--comfy-dir", type=Path, metavar="PATH",
                     help="local ComfyUI folder: models are downloaded into PATH/models/ (default: settings)")
    fix.add_argument("-o", "--output", type=Path, metavar="OUT",
                     help="where to save the corrected workflow when model names are rewritten "
                          "(default: <stem>.fixed.json beside the original)")
    fix.add_argument("--yes", action="store_true", help="take the best exact match for each model without asking")
    fix.add_argument("--json", action="store_true", help="print JSON lines on stdout")
    fix.add_argument("--no-queue", action="store_true", help="stop once nothing is missing; do not submit")
    fix.add_argument("--no-hf", action="store_true", help="do not search Hugging Face for models")
    fix.add_argument("--restart-timeout", type=exit_codes.positive_number, default=10.0, metavar="MIN",
                     help="minutes to wait for the server after a restart (default: 10)")
    fix.set_defaults(func=fix_command)


class Transcript:
    """Renders fix events as readable lines; progress overwrites itself on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()
        self._last: dict[tuple[str, str | None], float] = {}
        self._overwriting = False

    def __call__(self, event: FixEvent) -> None:
        repeating = event.state in ("progress", "waiting")
        if repeating and not self.live:
            key = (event.step, event.item)
            now = time.monotonic()
            if now - self._last.get(key, 0.0) < PLAIN_PROGRESS_INTERVAL:
                return
            self._last[key] = now
        line = self._format(event)
        if self.live and repeating:
            self.out.write(f"\r\x1b[2K{line}")
            self._overwriting = True
        else:
            if self._overwriting:
                self.out.write("\r\x1b[2K")
                self._overwriting = False
            self.out.write(line + "\n")
            for command in event.data.get("commands") or []:
                self.out.write(f"      $ {command}\n")
            for problem in event.data.get("problems") or []:
                self.out.write(f"      - {problem}\n")
        self.out.flush()

    @staticmethod
    def _format(event: FixEvent) -> str:
        mark = {"ok": "✓", "failed": "✗", "start": "→", "choose": "?"}.get(event.state, "·")
        item = f" {event.item}:" if event.item else ""
        return f"{mark} [{event.step}]{item} {event.message}"


class JsonLines:
    """One JSON object per event on stdout."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: FixEvent) -> None:
        self.out.write(json.dumps({"event": event.to_json()}, default=str) + "\n")
        self.out.flush()


def _ask_chooser(out: TextIO):
    """A chooser that lists candidates and reads a number from the terminal."""

    async def choose(need: ModelNeed, candidates: list[ModelCandidate]) -> ModelCandidate | None:
        import asyncio

        if not candidates:
            return None
        out.write(f"\nSources for {need.name} (models/{need.folder or '?'}/):\n")
        for i, c in enumerate(candidates[:9], 1):
            shown = size(c.size, missing="size unknown")
            extra = ", gated" if c.gated else ""
            out.write(f"  {i}. [{c.source}] {safe_url(c.url)} ({shown}{extra})\n")
        out.write("Pick a number (Enter to skip): ")
        out.flush()
        answer = (await asyncio.to_thread(sys.stdin.readline)).strip()
        if answer.isdigit() and 1 <= int(answer) <= min(9, len(candidates)):
            return candidates[int(answer) - 1]
        return None

    return choose


def _summary(outcome: FixOutcome) -> dict[str, Any]:
    return {
        "accepted": outcome.accepted,
        "prompt_id": outcome.prompt_id,
        "remaining": outcome.remaining,
        "needs": [need.value for need in outcome.needs],
        "commands": outcome.commands,
        "import_failures": [asdict(f) for f in outcome.import_failures],
        "renamed": outcome.renamed,
        "saved": str(outcome.saved) if outcome.saved else None,
    }


def _print_outcome(outcome: FixOutcome, out: TextIO) -> None:
    if outcome.saved is not None:
        out.write(f"\nThe corrected workflow is saved as {outcome.saved} (model names the server uses).\n")
    if outcome.accepted:
        out.write(f"\nThe server accepted the workflow (prompt {outcome.prompt_id}).\n")
        return
    if outcome.remaining:
        out.write("\nStill to do:\n")
        for line in outcome.remaining:
            out.write(f"  - {scrub_urls(line)}\n")
        for need in outcome.needs:
            out.write(f"  - or {CLI_REMEDIES[need]}\n")
    if outcome.commands:
        out.write("\nCommands (run them on the server):\n")
        for command in dict.fromkeys(outcome.commands):
            out.write(f"  {scrub_urls(command)}\n")


async def fix_command(args: argparse.Namespace) -> int:
    from pistachio_tui.cli.comfy_commands import resolve_server
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.errors import ComfyError, ServerUnreachable
    from pistachio_tui.config import ConfigError, get_secret, load_settings, state_dir
    from pistachio_tui.fix.flow import FixFlow, FixOptions
    from pistachio_tui.workflow.errors import WorkflowError
    from pistachio_tui.workflow.load import load_workflow

    try:
        settings = load_settings(Path(args.config) if getattr(args, "config", None) else None)
        url, headers = resolve_server(args)
        hf_token = get_secret("HF_TOKEN")
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return exit_codes.USAGE
    try:
        workflow = load_workflow(args.workflow)
    except WorkflowError as exc:
        # The error names the file already ("wf.json: $: cannot read the file (…)").
        print(f"fix: {exc}", file=sys.stderr)
        return exit_codes.input_error(args.workflow)
    comfy_dir = args.comfy_dir or settings.comfy_dir
    if comfy_dir is not None and not comfy_dir.is_dir():
        print(f"--comfy-dir {comfy_dir} is not a folder; give the ComfyUI folder (the one holding models/).",
              file=sys.stderr)
        return exit_codes.USAGE
    options = FixOptions(
        comfy_dir=comfy_dir, yes=args.yes, queue=not args.no_queue, hf_search=not args.no_hf,
        hf_token=hf_token, restart_timeout=args.restart_timeout * 60, state_dir=state_dir(), output=args.output,
    )
    emit = JsonLines(sys.stdout) if args.json else Transcript(sys.stdout)
    interactive = not args.yes and not args.json and sys.stdin.isatty()
    chooser = _ask_chooser(sys.stdout) if interactive else None
    async with ComfyClient(url, headers=headers) as client:
        try:
            outcome = await FixFlow(client, workflow, options, emit=emit, chooser=chooser).run()
        except ServerUnreachable as exc:
            print(exc.message, file=sys.stderr)
            return exit_codes.UNREACHABLE
        except ComfyError as exc:
            print(exc.message, file=sys.stderr)
            return exit_codes.FAILED
    if args.json:
        sys.stdout.write(json.dumps({"result": scrub_data(_summary(outcome))}, default=str) + "\n")
    else:
        _print_outcome(outcome, sys.stdout)
    if outcome.accepted or (args.no_queue and outcome.diagnosis is not None and outcome.diagnosis.clean):
        return exit_codes.OK
    return exit_codes.REJECTED
