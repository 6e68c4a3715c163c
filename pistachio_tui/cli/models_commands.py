"""``pistachio models``: model files outside a workflow.

::

    pistachio models list [--server URL|NAME] [--folder F] [--json]
    pistachio models download URL --folder F [--name N] [--sha256 H] [--comfy-dir PATH] [--server URL|NAME]

``list`` shows the server's model folders (and where it reads them from) and
their files. ``download`` takes a Hugging Face ``resolve`` or ``blob`` URL,
``hf://owner/repo/path/file`` or a plain URL, and saves it into
``<comfy-dir>/models/<folder>/`` with the fix flow's resumable, verified,
atomic download (after checking, when a server is named, that it reads that
folder); without a ComfyUI folder the server's Manager downloads it. Exit
codes: 0 done, 1 failed, 3 unreachable, 64 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pistachio_tui.cli import exit_codes
from pistachio_tui.cli.remedies import cli_remedy
from pistachio_tui.format import size, transfer

#: Seconds between two progress lines in a log (a terminal line is redrawn more often).
PLAIN_PROGRESS_INTERVAL = 5.0


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="list the server's model files, download one",
                                   description="Model files outside a workflow.")
    verbs = models.add_subparsers(dest="models_command", metavar="VERB", required=True)
    listing = verbs.add_parser("list", help="the server's model folders and files")
    listing.add_argument("--server", help="server URL or configured name (default: the first configured server)")
    listing.add_argument("--folder", help="only this folder (e.g. loras)")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(func=list_command)
    get = verbs.add_parser("download", help="download a model file into a models folder",
                           description="Download a model (HF resolve/blob URL, hf://owner/repo/file, or a plain "
                                       "URL) into models/<folder>/, resumable and verified.")
    get.add_argument("url", help="download address")
    get.add_argument("--folder", required=True, help="models folder: checkpoints, loras, vae, ...")
    get.add_argument("--name", help="file name to save as, may include a subfolder (default: the URL's)")
    get.add_argument("--sha256", help="expected sha256 of the file")
    get.add_argument("--comfy-dir", type=Path, metavar="PATH",
                     help="local ComfyUI folder (default: settings); without one, the server's Manager downloads")
    get.add_argument("--server", help="server URL or configured name: its folders are checked, or its Manager "
                                      "downloads when there is no local ComfyUI folder")
    get.set_defaults(func=download_command)


async def list_command(args: argparse.Namespace) -> int:
    from pistachio_tui.cli.comfy_commands import resolve_server
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.errors import ComfyError, ServerUnreachable
    from pistachio_tui.config import ConfigError
    from pistachio_tui.fix.server_folders import model_folders

    try:
        url, headers = resolve_server(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return exit_codes.USAGE
    async with ComfyClient(url, headers=headers) as client:
        try:
            folders = [args.folder] if args.folder else [
                f for f in await client.models() if f not in ("configs", "custom_nodes")]
            files = {folder: await client.models(folder) for folder in folders}
            paths = await model_folders(client) or {}
        except ServerUnreachable as exc:
            print(exc.message, file=sys.stderr)
            return exit_codes.UNREACHABLE
        except ComfyError as exc:
            print(exc.message, file=sys.stderr)
            return exit_codes.FAILED
    if args.json:
        print(json.dumps({"server": url, "folders": {
            f: {"paths": paths.get(f, []), "files": files[f]} for f in folders}}, indent=2))
        return exit_codes.OK
    for folder in folders:
        where = f"  ({', '.join(paths[folder])})" if paths.get(folder) else ""
        print(f"{folder}/ — {len(files[folder])} file(s){where}")
        for name in files[folder]:
            print(f"  {name}")
    return exit_codes.OK


class _Progress:
    """Download progress on stderr: redrawn in place on a terminal, every few seconds in a log."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, p: Any) -> None:
        now = time.monotonic()
        finished = bool(p.total and p.done >= p.total)
        if not finished and now - self._last < (0.2 if self.live else PLAIN_PROGRESS_INTERVAL):
            return
        self._last = now
        line = transfer(p.done, p.total, p.speed)
        sys.stderr.write(f"\r\x1b[2K{line}" if self.live else line + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self.live:
            sys.stderr.write("\r\x1b[2K")


async def download_command(args: argparse.Namespace) -> int:
    from pistachio_tui.config import ConfigError, get_secret, load_settings
    from pistachio_tui.fix.models_search import model_source

    try:
        url, default_name = model_source(args.url)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return exit_codes.USAGE
    try:
        settings = load_settings(Path(args.config) if getattr(args, "config", None) else None)
        token = get_secret("HF_TOKEN")
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return exit_codes.USAGE
    name = (args.name or default_name).replace("\\", "/")
    comfy_dir = args.comfy_dir or settings.comfy_dir
    if comfy_dir is not None:
        if not comfy_dir.is_dir():
            print(f"--comfy-dir {comfy_dir} is not a folder; give the ComfyUI folder (the one holding models/).",
                  file=sys.stderr)
            return exit_codes.USAGE
        return await _download_local(args, url, name, comfy_dir, token)
    if args.server:
        return await _download_by_manager(args, url, name)
    print("Nowhere to put the file: give --comfy-dir (a local ComfyUI folder) or --server (its Manager downloads).",
          file=sys.stderr)
    return exit_codes.USAGE


async def _download_local(args: argparse.Namespace, url: str, name: str, comfy_dir: Path, token: str | None) -> int:
    from pistachio_tui.fix.downloads import DownloadError, download, is_hf_url, safe_target

    if args.server:
        problem = await _folder_problem(args, comfy_dir)
        if problem is not None:
            message, answered = problem
            print(message, file=sys.stderr)
            return exit_codes.FAILED if answered else exit_codes.UNREACHABLE
    progress = _Progress()
    try:
        target = safe_target(comfy_dir / "models", f"{args.folder}/{name}")
        print(f"{url} → {target}")
        await download(url, target, sha256=args.sha256, token=token if is_hf_url(url) else None, progress=progress)
    except DownloadError as exc:
        progress.end()
        print(str(exc), file=sys.stderr)
        return exit_codes.FAILED
    progress.end()
    print(f"Saved {target} ({size(target.stat().st_size)}).")
    return exit_codes.OK


async def _folder_problem(args: argparse.Namespace, comfy_dir: Path) -> tuple[str, bool] | None:
    """Why the server would not see the file (message, and whether the server answered), or None."""
    from pistachio_tui.cli.comfy_commands import resolve_server
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.errors import ComfyError
    from pistachio_tui.fix.server_folders import comfy_dir_problem, model_folders

    url, headers = resolve_server(args)
    async with ComfyClient(url, headers=headers) as client:
        try:
            await client.system_stats()
        except ComfyError as exc:
            return exc.message, False
        folders = await model_folders(client)
    if folders is None:
        return None
    problem = comfy_dir_problem(comfy_dir, args.folder, folders, url)
    return (problem, True) if problem else None


async def _download_by_manager(args: argparse.Namespace, url: str, name: str) -> int:
    from pathlib import PurePosixPath

    from pistachio_tui.cli.comfy_commands import resolve_server
    from pistachio_tui.comfy.client import ComfyClient
    from pistachio_tui.comfy.errors import ComfyError, ServerUnreachable
    from pistachio_tui.fix.manager import ManagerClient, ManagerError
    from pistachio_tui.fix.models_search import FOLDER_MANAGER_TYPES
    from pistachio_tui.remedies import needs_of

    server_url, headers = resolve_server(args)
    pure = PurePosixPath(name)
    save_path = str(PurePosixPath(args.folder, *pure.parts[:-1]))
    async with ComfyClient(server_url, headers=headers) as client:
        manager = ManagerClient(client)
        try:
            if await manager.detect() is None:
                print(f"No ComfyUI-Manager at {client.shown_url}: give --comfy-dir to download here.",
                      file=sys.stderr)
                return exit_codes.FAILED
            ui_id = await manager.queue_install_model(
                name=pure.name, type=FOLDER_MANAGER_TYPES.get(args.folder, args.folder), url=url,
                filename=pure.name, save_path=save_path)
            print(f"The Manager at {client.shown_url} downloads {url} into models/{save_path}/ …")
            result = (await manager.run([ui_id]))[ui_id]
        except ServerUnreachable as exc:
            print(exc.message, file=sys.stderr)
            return exit_codes.UNREACHABLE
        except (ManagerError, ComfyError) as exc:
            print(f"{exc.message}{cli_remedy(needs_of(exc))}", file=sys.stderr)
            return exit_codes.FAILED
        if result.ok is False:
            print(f"The Manager could not download it: {await manager.explain(result)}", file=sys.stderr)
            return exit_codes.FAILED
    print(f"Saved models/{save_path}/{pure.name} on the server.")
    return exit_codes.OK
