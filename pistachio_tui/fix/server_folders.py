"""Where the server reads model files from, and whether a local folder is one of them.

ComfyUI 0.8.0 lists each model folder's paths at ``GET /internal/folder_paths``
(``{name: [paths]}``, ``api_server/routes/internal/internal_routes.py``) and at
``GET /api/experiment/models`` (``[{name, folders}]``, ``app/model_manager.py``),
both read from ``folder_paths.folder_names_and_paths`` (``models/<name>`` plus
``extra_model_paths.yaml``). Paths are the server machine's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import ComfyError


async def model_folders(client: ComfyClient) -> dict[str, list[str]] | None:
    """Model folder name → the server's paths for it; None when the server will not say."""
    for path in ("/internal/folder_paths", "/api/experiment/models"):
        try:
            response = await client.request("GET", path)
        except ComfyError:
            continue
        if response.status_code != 200:
            continue
        try:
            body: Any = response.json()
        except ValueError:
            continue
        if isinstance(body, dict):
            return {str(k): [str(p) for p in v] for k, v in body.items() if isinstance(v, list)}
        if isinstance(body, list):
            return {str(e["name"]): [str(p) for p in e.get("folders") or []]
                    for e in body if isinstance(e, dict) and "name" in e}
    return None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def comfy_dir_problem(comfy_dir: Path, folder: str, folders: dict[str, list[str]], server: str) -> str | None:
    """Why a file saved in ``comfy_dir/models/<folder>`` would stay invisible to the server, or None."""
    target = comfy_dir / "models" / folder
    paths = folders.get(folder)
    if paths is None:
        return f"ComfyUI at {server} has no model folder named {folder!r}; it knows: {', '.join(sorted(folders))}."
    if any(_same(target, Path(p)) for p in paths):
        return None
    local = [p for p in paths if Path(p).is_dir()]
    hint = (f" It reads {local[0]} on this machine: its ComfyUI folder is {Path(local[0]).parent.parent}."
            if local and Path(local[0]).parent.name == "models" else
            " Use that server's own ComfyUI folder, or none (then its Manager downloads the file).")
    return (f"ComfyUI at {server} reads {folder} from {', '.join(paths)}, not from {target}: a file saved "
            f"there would stay invisible to it.{hint}")
