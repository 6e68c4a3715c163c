"""Where workflows come from: bundled samples, user folders, the server, official templates."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pistachio_tui.bundled import bundled
from pistachio_tui.comfy.errors import ComfyError
from pistachio_tui.comfy.session import ServerSession

SUFFIXES = (".json", ".png", ".webp")


@dataclass(frozen=True)
class ServerWorkflow:
    """A workflow saved in the server's user data (``workflows/<name>``)."""

    server: str
    name: str


def bundled_dir() -> Path:
    return bundled("workflows")


def templates_dir() -> Path | None:
    """The installed official templates, if the package is there (found without importing it)."""
    spec = importlib.util.find_spec("comfyui_workflow_templates_json")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "templates"
    return folder if folder.is_dir() else None


def workflow_files(folder: Path | None) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())


async def server_workflows(session: ServerSession) -> list[ServerWorkflow]:
    """Names saved on the server; none when it has none or cannot be asked."""
    try:
        names = await session.client.get_json("/userdata", {"dir": "workflows"})
    except ComfyError:
        return []
    if not isinstance(names, list):
        return []
    return [ServerWorkflow(session.name, str(n)) for n in names if str(n).lower().endswith(SUFFIXES)]


async def fetch_server_workflow(session: ServerSession, item: ServerWorkflow) -> bytes:
    response = await session.client.request("GET", "/userdata/" + quote(f"workflows/{item.name}", safe=""))
    if response.status_code != 200:
        raise ComfyError(f"{item.server} has no saved workflow {item.name!r} ({response.status_code})")
    return response.content
