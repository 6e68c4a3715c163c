"""What the server's log says about its own environment: the Python and ComfyUI
folder it runs from, custom node packs that failed to import, and the exact shell
commands that fix them or install a pack by hand."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from pistachio_tui.comfy.types import LogEntry
from pistachio_tui.fix.nodedb import NodePack

#: Import names whose pip distribution is named differently.
PIP_NAMES = {
    "cv2": "opencv-python",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "bs4": "beautifulsoup4",
    "google.protobuf": "protobuf",
    "fitz": "pymupdf",
    "dateutil": "python-dateutil",
}


@dataclass(frozen=True)
class ServerPaths:
    """Where the server's Python and ComfyUI live, as its startup log says."""

    python: str | None = None
    comfy_path: str | None = None

    def pip(self) -> str:
        """The pip command of the server's own environment."""
        return f"{shlex.quote(self.python)} -m pip" if self.python else "python -m pip"

    def custom_nodes(self) -> str:
        return f"{self.comfy_path}/custom_nodes" if self.comfy_path else "custom_nodes"


@dataclass(frozen=True)
class ImportFailure:
    """A custom node pack that failed to import at startup, with the commands that fix it."""

    pack: str
    path: str
    message: str
    missing_module: str | None
    commands: tuple[str, ...] = ()


def manual_install_commands(pack: NodePack, paths: ServerPaths) -> list[str]:
    """Shell commands that install ``pack`` by hand, with the server's own Python."""
    folder = f"{paths.custom_nodes()}/{pack.repo_name}"
    if not pack.is_git and pack.registry_id:
        version = f"@{pack.version}" if pack.version else ""
        return [f"# {pack.title}: a Comfy registry pack; with comfy-cli on the server:",
                f"comfy node install {shlex.quote(pack.registry_id + version)}"]
    if not pack.is_git:
        return [f"# {pack.title}: download {pack.files[0] if pack.files else pack.url} into {paths.custom_nodes()}/"]
    commands = [
        f"git clone {shlex.quote(pack.url)} {shlex.quote(folder)}",
        f"{paths.pip()} install -r {shlex.quote(folder + '/requirements.txt')}",
    ]
    if pack.pip:
        commands.append(f"{paths.pip()} install {' '.join(shlex.quote(p) for p in pack.pip)}")
    return commands


_CANNOT_IMPORT = re.compile(r"Cannot import (?P<path>.+?) module for custom nodes: (?P<message>.+)")
_IMPORT_FAILED = re.compile(r"\(IMPORT FAILED\): (?P<path>.+)")
_NO_MODULE = re.compile(r"No module named '(?P<module>[^']+)'")
_PY_EXEC = re.compile(r"\*\* Python executable: (?P<value>.+)")
_COMFY_PATH = re.compile(r"\*\* ComfyUI Path: (?P<value>.+)")


def log_text(entries: Iterable[LogEntry]) -> str:
    """The log as one text: the server splits lines into several entries."""
    return "".join(e.m for e in entries)


def server_paths(text: str) -> ServerPaths:
    """The server's Python and ComfyUI folder from its startup banner (last start wins)."""
    pythons = _PY_EXEC.findall(text)
    comfy = _COMFY_PATH.findall(text)
    return ServerPaths(pythons[-1].strip() if pythons else None, comfy[-1].strip() if comfy else None)


def pip_name(module: str) -> str:
    """The pip distribution that provides import name ``module``."""
    for name in (module, module.split(".")[0]):
        if name in PIP_NAMES:
            return PIP_NAMES[name]
    return module.split(".")[0].replace("_", "-")


def parse_import_failures(text: str, paths: ServerPaths | None = None) -> list[ImportFailure]:
    """Packs whose import failed, from the server log, each with its fix commands."""
    paths = paths or server_paths(text)
    messages = {m["path"].strip(): m["message"].strip() for m in _CANNOT_IMPORT.finditer(text)}
    failed = [m["path"].strip() for m in _IMPORT_FAILED.finditer(text)]
    failures = []
    for path in dict.fromkeys([*messages, *failed]):
        message = messages.get(path, "import failed (see the traceback in the server log)")
        missing = _NO_MODULE.search(message)
        module = missing["module"] if missing else None
        pack = path.rstrip("/").rsplit("/", 1)[-1]
        commands = []
        if module:
            commands.append(f"{paths.pip()} install {shlex.quote(pip_name(module))}")
        commands.append(f"{paths.pip()} install -r {shlex.quote(path + '/requirements.txt')}")
        failures.append(ImportFailure(pack, path, message, module, tuple(commands)))
    return failures
