"""``pistachio status`` and ``pistachio run``: a ComfyUI server from the command line.

::

    pistachio status [--server URL|NAME] [--json]
    pistachio run FILE [--server URL|NAME] [--json] [--timeout S]

``run`` connects the websocket first, then queues the prompt, follows it
(live progress on stderr) and prints the result on stdout. Exit codes: 0
success, 1 execution error / interrupt / timeout, 2 prompt rejected or bad
file, 3 server unreachable, 64 bad settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pistachio_tui.cli import exit_codes
from pistachio_tui.format import gib

if TYPE_CHECKING:
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.errors import ComfyError
    from pistachio_tui.comfy.tracker import PromptState
    from pistachio_tui.comfy.types import ValidationReport
    from pistachio_tui.workflow.load import Workflow

DEFAULT_SERVER = "http://127.0.0.1:8188"
#: Seconds between progress lines when stderr is not a terminal (CI logs stay short).
PLAIN_PROGRESS_INTERVAL = 5.0


def register(subparsers: argparse._SubParsersAction) -> None:
    server_help = f"server URL or configured name (default: the first configured server, else {DEFAULT_SERVER})"

    status = subparsers.add_parser(
        "status", help="a ComfyUI server's versions, devices, VRAM and queue",
        description="Show a ComfyUI server's versions, devices with VRAM, and its queue.")
    status.add_argument("--server", help=server_help)
    status.add_argument("--json", action="store_true", help="print JSON on stdout")
    status.set_defaults(func=status_command)

    run = subparsers.add_parser(
        "run", help="queue a prompt file on a ComfyUI server and follow it to the end",
        description="Queue an API-format prompt, show live progress on stderr, print the result on stdout.")
    run.add_argument("file", type=Path, help="prompt file (API format JSON)")
    run.add_argument("--server", help=server_help)
    run.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    run.add_argument("--timeout", type=exit_codes.positive_number, metavar="S", help="give up after S seconds (the prompt stays queued)")
    run.set_defaults(func=run_command)


def load_run_file(path: Path) -> Workflow:
    """The workflow to run: an API prompt, a UI workflow, or an image carrying either.

    Raises :class:`WorkflowError` naming the file and what was wrong with it.
    """
    from pistachio_tui.workflow.load import load_workflow

    return load_workflow(path)


async def prompt_to_run(client: ComfyClient, workflow: Workflow) -> tuple[dict[str, Any], dict[str, Any]]:
    """The API prompt to queue and its ``extra_data``.

    A UI workflow is converted with the server's own node definitions, and
    travels along as ``extra_pnginfo.workflow`` so the saved images carry it,
    as the web frontend does.
    """
    from pistachio_tui.workflow.convert import to_api

    extra = {"extra_pnginfo": {"workflow": workflow.ui}} if workflow.ui is not None else {}
    if workflow.api is not None:
        return workflow.api, extra
    return to_api(workflow, await client.object_info()).prompt, extra


def resolve_server(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """URL and headers from ``--server`` (a URL or a configured name), else the first configured server."""
    from pistachio_tui.config import load_settings

    settings = load_settings(Path(args.config) if getattr(args, "config", None) else None)
    wanted = getattr(args, "server", None)
    if wanted:
        server = settings.server(wanted)
        if server is not None:
            return server.url, dict(server.headers)
        return exit_codes.server_url(wanted), {}
    if settings.servers:
        return settings.servers[0].url, dict(settings.servers[0].headers)
    return DEFAULT_SERVER, {}


def _error_exit(exc: ComfyError) -> int:
    from pistachio_tui.comfy.errors import AuthRequired, PromptRejected, ServerUnreachable

    if isinstance(exc, (ServerUnreachable, AuthRequired)):
        return exit_codes.UNREACHABLE
    if isinstance(exc, PromptRejected):
        return exit_codes.REJECTED
    return exit_codes.FAILED


def _emit_json(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, indent=2, default=str))


def fail(exc: ComfyError, as_json: bool, url: str) -> int:
    code = _error_exit(exc)
    kind = "unreachable" if code == exit_codes.UNREACHABLE else "failed"
    if as_json:
        _emit_json({"server": url, "status": kind, "error": exc.message})
    print(exc.message, file=sys.stderr)
    return code


def settings_or_usage(args: argparse.Namespace) -> tuple[str, dict[str, str]] | int:
    from pistachio_tui.config import ConfigError

    try:
        return resolve_server(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return exit_codes.USAGE


# -- status ------------------------------------------------------------------

async def status_command(args: argparse.Namespace) -> int:
    """``pistachio status``."""
    import asyncio

    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.errors import ComfyError

    resolved = settings_or_usage(args)
    if isinstance(resolved, int):
        return resolved
    url, headers = resolved
    async with ComfyClient(url, headers=headers) as client:
        try:
            stats, queue = await asyncio.gather(client.system_stats(), client.queue())
        except ComfyError as exc:
            return fail(exc, args.json, url)
    if args.json:
        _emit_json({
            "server": url,
            "status": "ok",
            "comfyui_version": stats.comfyui_version,
            "python_version": stats.python_version,
            "pytorch_version": stats.pytorch_version,
            "os": stats.os,
            "ram_total": stats.ram_total,
            "ram_free": stats.ram_free,
            "devices": [asdict(d) for d in stats.devices],
            "queue": {"running": len(queue.running), "pending": len(queue.pending),
                      "running_ids": [i.prompt_id for i in queue.running],
                      "pending_ids": [i.prompt_id for i in queue.pending]},
        })
    else:
        _print_status(url, stats, queue)
    return exit_codes.OK


def _print_status(url: str, stats: Any, queue: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # Every string the server sent is escaped: a version such as "0.8.0[/x]" is text, not markup.
    console = Console(file=sys.stdout, highlight=False)
    python = escape(stats.python_version.split(" ", 1)[0])
    console.print(f"[bold]ComfyUI {escape(stats.comfyui_version)}[/] at {escape(url)}")
    console.print(f"Python {python}, torch {escape(stats.pytorch_version)}, {escape(stats.os)}")
    console.print(f"RAM {gib(stats.ram_free)} free of {gib(stats.ram_total)}")
    # ComfyUI on CPU reports its device as type "cpu" with the machine's RAM in the VRAM fields.
    memory = "RAM" if stats.devices and all(d.type == "cpu" for d in stats.devices) else "VRAM"
    table = Table("#", "device", "type", f"{memory} free", f"{memory} total", "torch free", "torch total")
    for device in stats.devices:
        table.add_row("" if device.index is None else str(device.index), escape(device.name), escape(device.type),
                      gib(device.vram_free), gib(device.vram_total),
                      gib(device.torch_vram_free), gib(device.torch_vram_total))
    console.print(table)
    console.print(f"Queue: {len(queue.running)} running, {len(queue.pending)} pending")


# -- run -----------------------------------------------------------------------

class ProgressLine:
    """Live progress on a stream: one rewritten line on a terminal, a line every few seconds otherwise."""

    def __init__(self, stream: TextIO, *, tty: bool | None = None, interval: float = PLAIN_PROGRESS_INTERVAL,
                 clock=time.monotonic) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.interval = interval
        self._clock = clock
        self._last_plain: tuple[float, str | None] | None = None
        self._drawn = False

    def show(self, state: PromptState) -> None:
        """Draw ``state`` (throttled when not a terminal, except when the node changes)."""
        line = describe_progress(state)
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self._drawn = True
        else:
            now = self._clock()
            last = self._last_plain
            if last is not None and now - last[0] < self.interval and last[1] == state.current_node:
                return
            self._last_plain = (now, state.current_node)
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, message: str) -> None:
        """A message on its own line (e.g. the websocket dropped)."""
        self.end()
        self.stream.write(message + "\n")
        self.stream.flush()

    def end(self) -> None:
        """Leave the rewritten line behind before other output."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def describe_progress(state: PromptState) -> str:
    """``" 42.0% Slow Steps 10/20 19.8 it/s ETA 0.5s"``."""
    parts = [f"{state.fraction * 100:5.1f}%"]
    if state.status == "queued":
        parts.append("queued")
    elif state.current_title:
        parts.append(state.current_title)
    if state.max:
        parts.append(f"{state.value}/{state.max}")
    if state.it_per_s:
        parts.append(f"{state.it_per_s:.1f} it/s")
    if state.eta_s:
        parts.append(f"ETA {state.eta_s:.1f}s")
    return " ".join(parts)


class _Lost(Exception):
    """The server no longer knows the prompt (it restarted while we were away)."""


async def run_command(args: argparse.Namespace) -> int:
    """``pistachio run``."""
    import asyncio

    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.errors import ComfyError, PromptRejected
    from pistachio_tui.workflow.errors import WorkflowError

    try:
        workflow = load_run_file(args.file)
    except WorkflowError as exc:
        code = exit_codes.input_error(args.file)
        if args.json:
            _emit_json({"status": "unreadable" if code == exit_codes.NO_INPUT else "rejected", "error": str(exc)})
        print(exc, file=sys.stderr)
        return code
    resolved = settings_or_usage(args)
    if isinstance(resolved, int):
        return resolved
    url, headers = resolved
    progress = ProgressLine(sys.stderr)
    queueing = _Queueing()
    async with ComfyClient(url, headers=headers) as client:
        try:
            prompt, extra = await prompt_to_run(client, workflow)
            state = await asyncio.wait_for(_queue_and_follow(client, prompt, extra, progress, queueing),
                                           args.timeout)
        except PromptRejected as exc:
            progress.end()
            _print_rejection(url, exc.report, args.json)
            return exit_codes.REJECTED
        except WorkflowError as exc:
            if args.json:
                _emit_json({"status": "rejected", "error": str(exc)})
            print(exc, file=sys.stderr)
            return exit_codes.REJECTED
        except ComfyError as exc:
            progress.end()
            return fail(exc, args.json, url)
        except (TimeoutError, _Lost) as exc:
            progress.end()
            message = queueing.gave_up(args.timeout) if isinstance(exc, TimeoutError) else str(exc)
            if args.json:
                _emit_json({"server": url, "prompt_id": queueing.prompt_id, "status": "timeout" if isinstance(
                    exc, TimeoutError) else "lost", "error": message})
            print(message, file=sys.stderr)
            return exit_codes.FAILED
    progress.end()
    _print_result(url, state, args.json)
    return exit_codes.OK if state.status == "success" else exit_codes.FAILED


@dataclass
class _Queueing:
    """How far ``pistachio run`` got with queueing its prompt, for when it gives up."""

    #: Chosen before the submit is sent (ComfyUI takes the client's id), so a submit cut off by
    #: the timeout still names the prompt the server may have queued.
    prompt_id: str | None = None
    #: The server answered the submit: the prompt is queued.
    queued: bool = False

    def gave_up(self, timeout: float) -> str:
        if self.prompt_id is None:
            return f"Gave up after {timeout:g} s, before the prompt was sent; nothing was queued"
        if not self.queued:
            return (f"Gave up after {timeout:g} s while the server took the prompt; it may have queued it "
                    f"as {self.prompt_id} (look for that id in its queue)")
        return f"Gave up after {timeout:g} s; the prompt {self.prompt_id} stays on the server"


async def _queue_and_follow(client: ComfyClient, prompt: dict[str, Any], extra_data: dict[str, Any],
                            progress: ProgressLine, queueing: _Queueing) -> PromptState:
    """Connect the websocket, queue ``prompt``, and fold events until it ends."""
    from pistachio_tui.comfy.errors import ServerUnreachable
    from pistachio_tui.comfy.events import Disconnected
    from pistachio_tui.comfy.stream import EventStream
    from pistachio_tui.comfy.tracker import PromptTracker

    stream = EventStream(client)
    events = aiter(stream)
    try:
        # Connect before submitting: a fast prompt can finish before a late socket opens.
        first = await anext(events)
        if isinstance(first, Disconnected):
            await client.system_stats()  # raises the precise REST error if there is one
            raise ServerUnreachable(first.reason)
        queueing.prompt_id = str(uuid.uuid4())
        result = await client.submit(prompt, extra_data, prompt_id=queueing.prompt_id)
        queueing.queued = True
        tracker = PromptTracker()
        state = tracker.track(result.prompt_id, prompt, await _outputs_to_execute(client, result.prompt_id))
        progress.show(state)
        async for event in events:
            tracker.feed(event)
            if isinstance(event, Disconnected):
                progress.note(f"websocket lost ({event.reason}); reconnecting in {event.retry_in:.1f}s")
            if state.lost:
                raise _Lost(f"ComfyUI at {client.base_url} no longer knows prompt {result.prompt_id} "
                            "— did it restart? Queue it again.")
            if state.finished:
                return state
            progress.show(state)
        raise ServerUnreachable(f"The event stream of {client.base_url} ended unexpectedly")
    finally:
        await stream.close()
        await events.aclose()


async def _outputs_to_execute(client: ComfyClient, prompt_id: str) -> list[str] | None:
    """The output nodes the server will run for the prompt, when it is still queued."""
    from pistachio_tui.comfy.errors import ComfyError

    try:
        queue = await client.queue()
    except ComfyError:
        return None
    for item in queue.running + queue.pending:
        if item.prompt_id == prompt_id:
            return item.outputs_to_execute
    return None


def _print_rejection(url: str, report: ValidationReport, as_json: bool) -> None:
    if as_json:
        _emit_json({"server": url, "status": "rejected", "error_type": report.error_type,
                    "message": report.message, "details": report.details,
                    "missing_node_types": report.missing_node_types(),
                    "node_errors": [asdict(n) for n in report.node_errors]})
        return
    head, *lines = report.describe()
    print(f"rejected: {head}")
    for line in lines:
        print(f"  {line}")
    for name in report.missing_node_types():
        print(f"  missing node type: {name}")


def _print_result(url: str, state: PromptState, as_json: bool) -> None:
    if as_json:
        _emit_json({
            "server": url,
            "prompt_id": state.prompt_id,
            "status": state.status,
            "duration_s": state.duration,
            "cached_nodes": state.cached_nodes,
            "outputs": [asdict(o) for o in state.outputs],
            "error": None if state.error is None else {
                "node_id": state.error.node_id, "node_type": state.error.node_type,
                "exception_type": state.error.exception_type,
                "exception_message": state.error.exception_message,
                "traceback": state.error.traceback},
            "interrupted_at": None if state.interrupted is None else {
                "node_id": state.interrupted.node_id, "node_type": state.interrupted.node_type},
        })
        return
    took = "" if state.duration is None else f" in {state.duration:.{2 if state.duration < 10 else 1}f}s"
    print(f"{state.status}: prompt {state.prompt_id}{took}")
    if state.error is not None:
        error = state.error
        print(f"  node {_node_label(state, error.node_id, error.node_type)} raised "
              f"{error.exception_type}: {error.exception_message}")
    if state.interrupted is not None:
        print(f"  interrupted in node {_node_label(state, state.interrupted.node_id, state.interrupted.node_type)}")
    for out in state.outputs:
        folder = f"{out.type}/{out.subfolder + '/' if out.subfolder else ''}"
        print(f"  node {out.node_id} {out.kind}: {folder}{out.filename}")


def _node_label(state: PromptState, node_id: str, node_type: str) -> str:
    """``4 (Boom)``, or ``4 "Explode here" (Boom)`` when the node has its own title."""
    title = state.current_title if state.current_node == node_id else None
    return f'{node_id} "{title}" ({node_type})' if title and title != node_type else f"{node_id} ({node_type})"
