"""Which custom node pack provides a node class.

First the node's own identity: the official frontend saves the pack of most
nodes in their ``properties`` (``cnr_id`` and ``ver`` for Comfy registry packs,
``aux_id`` = ``author/repo`` and a commit for git-only ones). Then
ComfyUI-Manager's node map, live from a server's Manager (``getmappings``) or,
when the server has none, from the JSON files of the ``comfyui-manager``
package (a dependency of Pistachio). The package is only located, never
imported: importing it starts the whole Manager.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pistachio_tui.workflow.deps import PackRef

NODE_MAP_FILE = "extension-node-map.json"
NODE_LIST_FILE = "custom-node-list.json"
STATS_FILE = "github-stats.json"


class NodeDBError(Exception):
    """The node map cannot be loaded; the message says what to install or fix."""


@dataclass(frozen=True)
class NodePack:
    """A custom node pack as the Manager's lists describe it."""

    url: str
    title: str
    id: str | None = None
    install_type: str | None = None
    files: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    stars: int | None = None
    description: str = ""
    #: The Comfy registry id, when the Manager's live map or the workflow names the pack by it.
    registry_id: str | None = None
    #: The exact version the workflow was saved with (registry version or git commit).
    version: str | None = None

    @property
    def repo_name(self) -> str:
        """The folder name a ``git clone`` of the pack creates under ``custom_nodes/``."""
        name = self.url.rstrip("/").rsplit("/", 1)[-1]
        return name.removesuffix(".git")

    @property
    def is_git(self) -> bool:
        return self.install_type in (None, "git-clone") and self.url.startswith(("https://", "http://"))


#: ``cnr_id`` of ComfyUI's own nodes: a missing one needs a newer ComfyUI, not a pack.
CORE_ID = "comfy-core"


@dataclass(frozen=True)
class PackMatch:
    """A pack that provides a class; ``exact`` when listed by name, not by pattern."""

    pack: NodePack
    exact: bool


def manager_data_dir() -> Path | None:
    """The folder of the installed ``comfyui-manager`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("comfyui_manager")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if (Path(location) / NODE_MAP_FILE).is_file():
            return Path(location)
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NodeDBError(f"Cannot read the node list {path}: {exc}") from None


def _norm_url(url: str) -> str:
    return url.rstrip("/").removesuffix(".git").lower()


class NodeDB:
    """Node class → packs, with pack details and ranking for ambiguous classes."""

    def __init__(
        self,
        node_map: dict[str, Any],
        node_list: list[dict[str, Any]] | None = None,
        stats: dict[str, Any] | None = None,
        registry_ids: dict[str, str] | None = None,
    ) -> None:
        details = {}
        for entry in node_list or []:
            for url in {entry.get("reference", ""), *(entry.get("files") or [])}:
                if url:
                    details[_norm_url(url)] = entry
        stars = {_norm_url(url): (s or {}).get("stars") for url, s in (stats or {}).items()}
        self._by_class: dict[str, list[str]] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        self._packs: dict[str, NodePack] = {}
        for url, value in node_map.items():
            classes, meta = (value[0], value[1]) if isinstance(value, list) and len(value) >= 2 else (value, {})
            pack = self._make_pack(url, meta, details.get(_norm_url(url)), stars.get(_norm_url(url)))
            if registry_ids and url in registry_ids:
                pack = replace(pack, registry_id=registry_ids[url])
            self._packs[url] = pack
            for class_type in classes or []:
                self._by_class.setdefault(class_type, []).append(url)
            pattern = (meta or {}).get("nodename_pattern")
            if pattern:
                try:
                    self._patterns.append((re.compile(pattern), url))
                except re.error:
                    continue

    @staticmethod
    def _make_pack(url: str, meta: dict[str, Any], entry: dict[str, Any] | None, stars: int | None) -> NodePack:
        entry = entry or {}
        pip = entry.get("pip") or []
        return NodePack(
            url=url,
            title=entry.get("title") or meta.get("title_aux") or meta.get("title") or url.rsplit("/", 1)[-1],
            id=entry.get("id"),
            install_type=entry.get("install_type"),
            files=tuple(entry.get("files") or [url]),
            pip=tuple(pip) if isinstance(pip, list) else (),
            stars=stars,
            description=entry.get("description") or meta.get("description", ""),
        )

    @classmethod
    def from_manager_package(cls) -> NodeDB:
        """The offline map bundled with the ``comfyui-manager`` package (loaded once)."""
        return _offline_db()

    @classmethod
    def from_mappings(cls, mappings: dict[str, Any]) -> NodeDB:
        """A map fetched from a server's Manager, with pack details from the offline copy when present.

        The Manager keys packs known to the Comfy registry by registry id rather
        than by URL; their repository is looked up in the offline map by class.
        """
        node_list, stats = _offline_details()
        offline = _offline_db_or_none()
        node_map: dict[str, Any] = {}
        registry_ids: dict[str, str] = {}
        for key, value in mappings.items():
            if key.startswith(("https://", "http://")):
                node_map[key] = value
                continue
            classes = value[0] if isinstance(value, list) and value else []
            url = next((m.pack.url for c in classes if offline for m in offline.packs_for(c) if m.exact), key)
            node_map[url] = value
            registry_ids[url] = key
        return cls(node_map, node_list, stats, registry_ids)

    def __len__(self) -> int:
        return len(self._packs)

    def pack_for_identity(self, ref: PackRef) -> NodePack:
        """The pack a node's recorded identity names (``cnr_id``, else ``aux_id``), with
        details from the lists when they know it, and the version it was saved with.

        A pack missing from the lists (newer than them) is still installable by
        its registry id or repository."""
        repository = f"https://github.com/{ref.aux_id}" if ref.aux_id and ref.aux_id.count("/") == 1 else None
        known = None
        for pack in self._packs.values():
            if ref.cnr_id and ref.cnr_id in (pack.registry_id, pack.id, pack.repo_name.lower()):
                known = pack
            elif repository and _norm_url(pack.url) == _norm_url(repository):
                known = pack
            if known is not None:
                break
        url = repository or (known.url if known else f"https://registry.comfy.org/nodes/{ref.cnr_id}")
        base = known or NodePack(url=url, title=ref.cnr_id or ref.aux_id or url,
                                 install_type="git-clone" if repository else "cnr")
        return replace(base, registry_id=ref.cnr_id or base.registry_id, version=ref.ver)

    def pack(self, url: str) -> NodePack | None:
        """The pack whose node-map key (repository URL) is ``url``."""
        return self._packs.get(url)

    def packs_for(self, class_type: str) -> list[PackMatch]:
        """Packs providing ``class_type``, best first: listed by name before matched by
        pattern, then by GitHub stars."""
        exact = self._by_class.get(class_type, [])
        by_pattern = [url for pattern, url in self._patterns if url not in exact and pattern.match(class_type)]
        matches = [PackMatch(self._packs[u], True) for u in exact]
        matches += [PackMatch(self._packs[u], False) for u in by_pattern]
        return sorted(matches, key=lambda m: (not m.exact, -(m.pack.stars or 0), m.pack.title.lower()))

    def resolve(self, class_types: list[str]) -> dict[str, list[PackMatch]]:
        """``packs_for`` of every class (an empty list for classes nobody provides)."""
        return {c: self.packs_for(c) for c in class_types}


@functools.cache
def _offline_db() -> NodeDB:
    folder = manager_data_dir()
    if folder is None:
        raise NodeDBError(
            "No offline node list: the 'comfyui-manager' package (a dependency of Pistachio) is missing "
            "or has no extension-node-map.json; reinstall Pistachio (pip install --force-reinstall "
            "pistachio-tui), or connect to a server that runs ComfyUI-Manager."
        )
    node_list, stats = _offline_details()
    return NodeDB(_read_json(folder / NODE_MAP_FILE), node_list, stats)


def _offline_db_or_none() -> NodeDB | None:
    try:
        return _offline_db()
    except NodeDBError:
        return None


@functools.cache
def _offline_details() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Pack details and GitHub stars from the bundled lists (empty when absent)."""
    folder = manager_data_dir()
    if folder is None:
        return [], {}
    node_list = _read_json(folder / NODE_LIST_FILE).get("custom_nodes", []) if (folder / NODE_LIST_FILE).is_file() else []
    stats = _read_json(folder / STATS_FILE) if (folder / STATS_FILE).is_file() else {}
    return node_list, stats
