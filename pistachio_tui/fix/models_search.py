"""Where to get a missing model file: candidates from the workflow's own
``models`` metadata, the Manager's ``model-list.json`` and Hugging Face search,
ranked so the exact file the workflow names comes first.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from pistachio_tui.config import env_override
from pistachio_tui.fix.downloads import is_hf_url
from pistachio_tui.fix.nodedb import manager_data_dir
from pistachio_tui.workflow.deps import ModelNeed, canonical_folder

MODEL_LIST_FILE = "model-list.json"
#: The Manager's model ``type`` → models folder, for ``save_path: default``.
MANAGER_TYPE_FOLDERS = {
    "checkpoint": "checkpoints", "checkpoints": "checkpoints", "unclip": "checkpoints",
    "clip": "text_encoders", "text_encoders": "text_encoders", "vae": "vae", "lora": "loras",
    "t2i-adapter": "controlnet", "t2i-style": "controlnet", "controlnet": "controlnet",
    "clip_vision": "clip_vision", "gligen": "gligen", "upscale": "upscale_models",
    "embedding": "embeddings", "embeddings": "embeddings", "unet": "diffusion_models",
    "diffusion_model": "diffusion_models", "taesd": "vae_approx",
}
#: Our folder → the Manager's ``type``, for ``install_model`` with ``save_path: default``.
FOLDER_MANAGER_TYPES = {
    "checkpoints": "checkpoint", "text_encoders": "clip", "vae": "vae", "loras": "lora",
    "controlnet": "controlnet", "clip_vision": "clip_vision", "gligen": "gligen",
    "upscale_models": "upscale", "embeddings": "embedding", "diffusion_models": "diffusion_model",
}
_SOURCE_ORDER = {"workflow": 0, "manager": 1, "huggingface": 2}
_SIZE = re.compile(r"^\s*([\d.]+)\s*([KMGT]?)i?B\s*$", re.IGNORECASE)
HF_RESULTS = 5
#: One short attempt decides whether the Hub is reachable at all (a search makes several calls).
HUB_PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class ModelCandidate:
    """A file that could satisfy a missing model, and where it would go."""

    filename: str
    folder: str | None
    url: str
    source: str  # "workflow" | "manager" | "huggingface"
    size: int | None = None
    sha256: str | None = None
    licence: str | None = None
    gated: bool = False
    repo: str | None = None
    title: str | None = None

    def matches(self, name: str) -> bool:
        """Whether this is the very file ``name`` (compared on the base name)."""
        return PurePosixPath(self.filename).name == PurePosixPath(name.replace("\\", "/")).name


def parse_size(text: Any) -> int | None:
    """``"4.71MB"`` → bytes (the Manager's list writes sizes this way)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text or ""))
    if not match:
        return None
    power = " KMGT".index((match[2] or " ").upper())
    return int(float(match[1]) * 1024**power)


def rank(need: ModelNeed, candidates: list[ModelCandidate]) -> list[ModelCandidate]:
    """Best first: the exact file, then the right folder, then the workflow's own address
    (where its author got the file), then a known size, then source."""
    folder = canonical_folder(need.folder)

    def key(c: ModelCandidate) -> tuple[int, int, int, int, int]:
        return (
            0 if c.matches(need.name) else 1,
            0 if folder and canonical_folder(c.folder) == folder else 1,
            0 if c.source == "workflow" else 1,
            0 if c.size is not None else 1,
            _SOURCE_ORDER.get(c.source, 9),
        )

    unique: dict[tuple[str, str | None], ModelCandidate] = {}
    for c in sorted(candidates, key=key):
        unique.setdefault((c.url, c.folder), c)
    return list(unique.values())


def from_workflow(need: ModelNeed) -> list[ModelCandidate]:
    """The URL the workflow itself gives for this model."""
    if not need.url:
        return []
    return [ModelCandidate(PurePosixPath(need.name.replace("\\", "/")).name, canonical_folder(need.folder),
                           need.url, "workflow", sha256=need.sha256)]


@functools.cache
def _model_list() -> tuple[dict[str, Any], ...]:
    folder = manager_data_dir()
    path = folder / MODEL_LIST_FILE if folder else None
    if path is None or not path.is_file():
        return ()
    try:
        return tuple(json.loads(path.read_text(encoding="utf-8")).get("models", []))
    except (OSError, ValueError):
        return ()


def _manager_folder(entry: dict[str, Any]) -> str | None:
    save_path = str(entry.get("save_path") or "default")
    if save_path == "default":
        return MANAGER_TYPE_FOLDERS.get(str(entry.get("type", "")).lower())
    if save_path.startswith("custom_nodes") or ".." in save_path or save_path.startswith("/"):
        return None
    # Only the top folder counts: the file must land under the name the workflow uses,
    # and "checkpoints/SDXL" would make ComfyUI list it as "SDXL/<file>".
    return canonical_folder(save_path.split("/")[0])


def from_model_list(need: ModelNeed, entries: tuple[dict[str, Any], ...] | None = None) -> list[ModelCandidate]:
    """Entries of the Manager's ``model-list.json`` with this file name."""
    wanted = PurePosixPath(need.name.replace("\\", "/")).name.lower()
    found = []
    for entry in _model_list() if entries is None else entries:
        if str(entry.get("filename", "")).lower() != wanted or not entry.get("url"):
            continue
        folder = _manager_folder(entry)
        if folder is None:
            continue
        found.append(ModelCandidate(
            filename=str(entry["filename"]), folder=folder, url=str(entry["url"]), source="manager",
            size=parse_size(entry.get("size")), title=entry.get("name"),
        ))
    return found


def hf_endpoint() -> str:
    """The Hub's address: ``HF_ENDPOINT`` (a mirror) when set, as ``huggingface_hub`` reads it."""
    return (env_override("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def hf_file_url(repo: str, path: str, revision: str = "main") -> str:
    return f"{hf_endpoint()}/{repo}/resolve/{quote(revision)}/{quote(path)}"


def model_source(text: str) -> tuple[str, str]:
    """A download address as people paste it → (URL, file name).

    ``hf://owner/repo/path/file`` (revision ``main``, or ``hf://owner/repo@rev/path``),
    Hugging Face ``blob`` page URLs (turned into ``resolve``), and plain URLs.
    """
    if text.startswith("hf://"):
        parts = text[len("hf://"):].strip("/").split("/")
        if len(parts) < 3:
            raise ValueError(f"{text!r}: an hf:// address is hf://owner/repo/path/to/file")
        repo_name, _, revision = parts[1].partition("@")
        path = "/".join(parts[2:])
        return hf_file_url(f"{parts[0]}/{repo_name}", path, revision or "main"), PurePosixPath(path).name
    split = urlsplit(text)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise ValueError(f"{text!r} is not a download address: give an http(s) URL or hf://owner/repo/file")
    url = text.replace("/blob/", "/resolve/", 1) if "/blob/" in split.path and is_hf_url(text) else text
    name = unquote(PurePosixPath(split.path).name)
    if not name:
        raise ValueError(f"{text!r} names no file: add --name")
    return url, name


async def hub_unreachable(*, timeout: float = HUB_PROBE_TIMEOUT,
                          transport: httpx.AsyncBaseTransport | None = None) -> str | None:
    """None when the Hub answers; else one sentence naming it and what to do instead."""
    endpoint = hf_endpoint()
    try:
        async with httpx.AsyncClient(timeout=timeout, transport=transport) as http:
            response = await http.get(f"{endpoint}/api/models", params={"limit": 1})
    except httpx.HTTPError as exc:
        reason = type(exc).__name__
    else:
        if response.status_code < 500:
            return None
        reason = f"HTTP {response.status_code}"
    host = urlsplit(endpoint).hostname or endpoint
    return (f"Hugging Face ({host}) is unreachable from here ({reason}), so models cannot be searched there: "
            "paste a direct download URL, set HF_ENDPOINT to a mirror you can reach, or copy the file into "
            "the server's models/<folder>/ yourself.")


def _licence(info: Any) -> str | None:
    card = getattr(info, "card_data", None)
    licence = getattr(card, "license", None) if card is not None else None
    if licence:
        return str(licence)
    for tag in getattr(info, "tags", None) or []:
        if str(tag).startswith("license:"):
            return str(tag).split(":", 1)[1]
    return None


def _search_hf_sync(api: Any, need: ModelNeed, token: str | None, limit: int) -> list[ModelCandidate]:
    name = PurePosixPath(need.name.replace("\\", "/")).name
    stem = name.rsplit(".", 1)[0]
    found = []
    for model in api.list_models(search=stem, limit=limit, token=token):
        info = api.model_info(model.id, files_metadata=True, token=token)
        for sibling in info.siblings or []:
            if PurePosixPath(sibling.rfilename).name != name:
                continue
            lfs = getattr(sibling, "lfs", None)
            found.append(ModelCandidate(
                filename=name, folder=canonical_folder(need.folder), url=hf_file_url(info.id, sibling.rfilename),
                source="huggingface", size=getattr(sibling, "size", None),
                sha256=getattr(lfs, "sha256", None) if lfs is not None else None,
                licence=_licence(info), gated=bool(getattr(info, "gated", False)), repo=info.id,
            ))
    return found


async def from_huggingface(need: ModelNeed, *, token: str | None = None, api: Any = None,
                           limit: int = HF_RESULTS) -> list[ModelCandidate]:
    """Hugging Face repos found by the file's stem that hold exactly this file.

    ``huggingface_hub`` is blocking, so it runs in a thread.
    """
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    return await asyncio.to_thread(_search_hf_sync, api, need, token, limit)


async def find_candidates(need: ModelNeed, *, hf: bool = True, token: str | None = None,
                          hf_api: Any = None) -> list[ModelCandidate]:
    """Every candidate for ``need``, ranked. Hugging Face is asked only when the
    workflow and the Manager's list have no exact match; a failing search is
    treated as no result, because the other sources may still do."""
    # The first read of model-list.json parses a quarter-megabyte file: off the event loop.
    local = from_workflow(need) + from_model_list(need, await asyncio.to_thread(_model_list))
    if hf and not any(c.matches(need.name) for c in local):
        try:
            local += await from_huggingface(need, token=token, api=hf_api)
        except Exception:  # noqa: BLE001 - any network/library failure means "no HF result"
            pass
    return rank(need, local)


def best_exact(need: ModelNeed, candidates: list[ModelCandidate]) -> ModelCandidate | None:
    """The candidate to take without asking: the top one, if it is the exact file."""
    return next((c for c in candidates if c.matches(need.name) and c.folder), None)
