"""What a workflow needs from a server: node classes and model files.

Model references come from two places: combo inputs whose value is a model
file (the folder known from a table of loader nodes, else guessed from the
input name), and the workflow's own ``models`` metadata (name, url,
directory). Presence is checked against the server's per-folder lists when
given, else against the option list ``object_info`` advertises for that input
(which *is* the server's file list).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pistachio_tui.workflow.convert import VIRTUAL_NODE_TYPES, ConversionResult, to_api
from pistachio_tui.workflow.gcpause import without_cyclic_gc
from pistachio_tui.workflow.groupnodes import expand_group_nodes
from pistachio_tui.workflow.load import Workflow
from pistachio_tui.workflow.node_widgets import combo_values, input_spec
from pistachio_tui.workflow.uigraph import UIWorkflow

#: (node class, input) → model folder, for the core loader nodes.
LOADER_FOLDERS: dict[tuple[str, str], str] = {
    **{(c, "ckpt_name"): "checkpoints" for c in (
        "CheckpointLoaderSimple", "CheckpointLoader", "ImageOnlyCheckpointLoader", "unCLIPCheckpointLoader",
        "CreateHookModelAsLora", "CreateHookModelAsLoraModelOnly", "LTXVAudioVAELoader", "LTXAVTextEncoderLoader",
    )},
    ("CheckpointLoader", "config_name"): "configs",
    **{(c, "lora_name"): "loras" for c in ("LoraLoader", "LoraLoaderModelOnly", "CreateHookLora", "CreateHookLoraModelOnly")},
    ("VAELoader", "vae_name"): "vae",
    ("CLIPLoader", "clip_name"): "text_encoders",
    **{("DualCLIPLoader", f"clip_name{i}"): "text_encoders" for i in (1, 2)},
    **{("TripleCLIPLoader", f"clip_name{i}"): "text_encoders" for i in (1, 2, 3)},
    **{("QuadrupleCLIPLoader", f"clip_name{i}"): "text_encoders" for i in (1, 2, 3, 4)},
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("LatentUpscaleModelLoader", "model_name"): "latent_upscale_models",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("DiffControlNetLoader", "control_net_name"): "controlnet",
    ("StyleModelLoader", "style_model_name"): "style_models",
    ("GLIGENLoader", "gligen_name"): "gligen",
    ("HypernetworkLoader", "hypernetwork_name"): "hypernetworks",
    ("PhotoMakerLoader", "photomaker_model_name"): "photomaker",
    ("ModelPatchLoader", "name"): "model_patches",
    ("AudioEncoderLoader", "audio_encoder_name"): "audio_encoders",
}


def _by_class(table: dict[tuple[str, str], str]) -> dict[str, dict[str, str]]:
    by_class: dict[str, dict[str, str]] = {}
    for (class_type, input_name), folder in table.items():
        by_class.setdefault(class_type, {})[input_name] = folder
    return by_class


#: The same table by node class, so each prompt node looks its class up once.
_LOADER_INPUTS = _by_class(LOADER_FOLDERS)
_NO_LOADER: dict[str, str] = {}
#: Values some loaders offer that are built in, not files.
_BUILTIN_VALUES = frozenset({"pixel_space", "taesd", "taesdxl", "taesd3", "taef1", "None", "none", ""})
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx", ".pt2", ".pkl", ".yaml")
#: Input-name fragments → folder, for model combos of nodes not in the table (first match wins).
_NAME_HINTS = (
    ("lora", "loras"), ("vae", "vae"), ("clip_vision", "clip_vision"), ("clip", "text_encoders"),
    ("text_encoder", "text_encoders"), ("unet", "diffusion_models"), ("diffusion", "diffusion_models"),
    ("ckpt", "checkpoints"), ("checkpoint", "checkpoints"), ("control_net", "controlnet"),
    ("controlnet", "controlnet"), ("upscale", "upscale_models"), ("style_model", "style_models"),
    ("gligen", "gligen"), ("hypernetwork", "hypernetworks"), ("photomaker", "photomaker"),
    ("audio_encoder", "audio_encoders"), ("patch", "model_patches"),
)
#: Legacy folder names the server maps onto current ones.
FOLDER_ALIASES = {"clip": "text_encoders", "unet": "diffusion_models", "t2i_adapter": "controlnet"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[\\/]")


@dataclass
class ModelNeed:
    """One model file the workflow uses: where it goes and whether the server has it."""

    name: str
    folder: str | None
    node_id: str | None
    input_name: str | None
    url: str | None
    present: bool | None
    unsafe: bool
    #: The sha256 the workflow's ``models`` metadata gives for the file, checked after a download.
    sha256: str | None = None


@dataclass(frozen=True)
class PackRef:
    """The node pack the editor recorded on a node (``properties.cnr_id`` / ``aux_id`` / ``ver``).

    ``cnr_id`` is the pack's id in the Comfy registry (``comfy-core`` for
    built-in nodes), ``aux_id`` its GitHub ``owner/repo`` when it is not in
    the registry, ``ver`` the version or commit the workflow was saved with.
    """

    cnr_id: str | None = None
    aux_id: str | None = None
    ver: str | None = None


@dataclass
class Needs:
    """Everything a workflow requires from a server."""

    missing_nodes: list[str]
    models: list[ModelNeed]
    node_types: list[str]
    #: Types kept without ``class_type`` by the conversion (their widget values cannot be named).
    unknown_types: list[str] = field(default_factory=list)
    #: node class → the pack the workflow says it came from, for classes whose nodes record one.
    packs: dict[str, PackRef] = field(default_factory=dict)

    @property
    def missing_models(self) -> list[ModelNeed]:
        return [m for m in self.models if m.present is False]


def canonical_folder(folder: str | None) -> str | None:
    return FOLDER_ALIASES.get(folder, folder) if folder else folder


def is_unsafe_name(name: str) -> bool:
    """Absolute paths, drive letters and ``..`` components: never write these under models/."""
    if not name or name.startswith(("/", "\\", "~")) or _DRIVE.match(name) or "\x00" in name:
        return True
    return any(part == ".." for part in _SEPARATORS.split(name))


_LONGEST_EXTENSION = max(map(len, MODEL_EXTENSIONS))


def looks_like_model_file(value: Any) -> bool:
    # Only the tail matters; lowering a whole prompt text to read its last letters is wasted work.
    return isinstance(value, str) and value[-_LONGEST_EXTENSION:].lower().endswith(MODEL_EXTENSIONS)


def _folder_by_hint(input_name: str) -> str | None:
    lowered = input_name.lower()
    return next((folder for hint, folder in _NAME_HINTS if hint in lowered), None)


def _file_key(name: str) -> str:
    """A model file name as compared: Windows separators count as slashes."""
    return name.replace("\\", "/")


def _same_file(a: str, b: str) -> bool:
    return _file_key(a) == _file_key(b)


class _Analyser:
    def __init__(self, object_info: dict[str, Any], server_models: dict[str, list[str]] | None) -> None:
        self.object_info = object_info
        self.server_models = {canonical_folder(k): v for k, v in (server_models or {}).items()}
        self._folders_by_list: dict[tuple[str, ...], str] | None = None

    def options(self, class_type: str, input_name: str) -> list[Any] | None:
        definition = self.object_info.get(class_type)
        if not isinstance(definition, dict):
            return None
        spec = input_spec(definition, input_name)
        return combo_values(spec) if spec is not None else None

    def folder_by_options(self, options: list[Any] | None) -> str | None:
        """The folder of a core loader offering exactly this (non-empty) file list."""
        if not options:
            return None
        if self._folders_by_list is None:
            self._folders_by_list = {}
            for (class_type, input_name), folder in LOADER_FOLDERS.items():
                listing = self.options(class_type, input_name)
                if listing:
                    self._folders_by_list.setdefault(tuple(map(str, listing)), folder)
        return self._folders_by_list.get(tuple(map(str, options)))

    def presence(self, name: str, folder: str | None, options: list[Any] | None) -> bool | None:
        listing = self.server_models.get(canonical_folder(folder)) if folder else None
        if listing is None:
            listing = options
        if listing is None:
            return None
        return any(isinstance(v, str) and _same_file(v, name) for v in listing)

    def from_prompt(self, prompt: dict[str, Any]) -> list[ModelNeed]:
        needs = []
        for node_id, node in prompt.items():
            class_type = node.get("class_type")
            if not isinstance(class_type, str):
                continue
            loader = _LOADER_INPUTS.get(class_type, _NO_LOADER)
            for input_name, value in (node.get("inputs") or {}).items():
                if not isinstance(value, str):
                    continue
                folder = loader.get(input_name)
                # looks_like_model_file inline, and before the set lookup, which would hash every
                # prompt text whole: this loop meets every string input of every node.
                if folder is None and not value[-_LONGEST_EXTENSION:].lower().endswith(MODEL_EXTENSIONS):
                    continue
                if value in _BUILTIN_VALUES:
                    continue
                options = self.options(class_type, input_name)
                if folder is None:
                    if options is None and class_type in self.object_info:
                        continue  # a plain string input (prompt text), never a file reference
                    folder = self.folder_by_options(options) or _folder_by_hint(input_name)
                needs.append(ModelNeed(value, folder, node_id, input_name, None,
                                       self.presence(value, folder, options), is_unsafe_name(value)))
        return needs

    def from_unknown_nodes(self, graph: UIWorkflow | None) -> list[ModelNeed]:
        """Model-looking widget values of nodes the server does not know (custom loaders)."""
        needs: list[ModelNeed] = []
        if graph is None:
            return needs
        for node in graph.all_nodes():
            if node.type in self.object_info or node.type in VIRTUAL_NODE_TYPES or node.type in graph.subgraphs:
                continue
            values = node.widgets_values
            seq = list(values.values()) if isinstance(values, dict) else list(values or [])
            for value in seq:
                if looks_like_model_file(value):
                    needs.append(ModelNeed(value, None, node.id, None, None, None, is_unsafe_name(value)))
        return needs


# The frontend's own checks (1.58 workflow schema: cnr_id, aux_id, ver), so a value it would
# refuse to send is not offered to the fix flow either.
_PACK_ID = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9._-]*[a-zA-Z0-9])?")
_GITHUB_USER = re.compile(r"(?!-)(?!.*--)[a-zA-Z0-9-]+(?<!-)")
_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([\da-z-]+(?:\.[\da-z-]+)*))?(?:\+([\da-z-]+(?:\.[\da-z-]+)*))?")
_COMMIT = re.compile(r"[0-9a-f]{4,40}", re.IGNORECASE)


def _checked(check: Callable[[str], str | None], value: Any) -> str | None:
    return check(value) if isinstance(value, str) else None


@lru_cache(maxsize=1024)
def _pack_id(value: str) -> str | None:
    return value if len(value) <= 100 and _PACK_ID.fullmatch(value) else None


@lru_cache(maxsize=1024)
def _aux_id(value: str) -> str | None:
    if value.count("/") != 1:
        return None
    user, repo = value.split("/")
    return value if len(user) <= 39 and _GITHUB_USER.fullmatch(user) and _pack_id(repo) else None


@lru_cache(maxsize=1024)
def _version(value: str) -> str | None:
    bare = value[1:] if value.startswith("v") else value
    if _SEMVER.fullmatch(bare) or _COMMIT.fullmatch(bare):
        return bare
    return "unknown" if value == "unknown" else None


def pack_refs(graph: UIWorkflow) -> dict[str, PackRef]:
    """node class → its recorded pack; the first node of a class that names a valid one wins."""
    packs: dict[str, PackRef] = {}
    for node in graph.all_nodes():
        if node.type in packs or node.type in graph.subgraphs:
            continue
        props = node.properties
        if "cnr_id" not in props and "aux_id" not in props:
            continue
        cnr_id = _checked(_pack_id, props.get("cnr_id"))
        aux_id = _checked(_aux_id, props.get("aux_id"))
        if cnr_id or aux_id:  # only then is the (frozen, so slower to build) PackRef made
            packs[node.type] = PackRef(cnr_id, aux_id, _checked(_version, props.get("ver")))
    return packs


def _sha256_hex(value: str | None) -> str | None:
    """A sha256 from ``models`` metadata (64 hex digits), else None: other hash kinds are not checked."""
    text = (value or "").strip().lower()
    return text if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else None


def _merge_metadata(needs: list[ModelNeed], workflow: Workflow, analyser: _Analyser) -> list[ModelNeed]:
    by_file: dict[str, list[ModelNeed]] = {}
    for need in needs:
        by_file.setdefault(_file_key(need.name), []).append(need)
    for ref in workflow.model_refs:
        folder = ref.directory
        matches = by_file.get(_file_key(ref.name), [])
        for need in matches:
            need.url = need.url or ref.url
            need.sha256 = need.sha256 or _sha256_hex(ref.hash)
            if need.folder is None:
                need.folder = folder
                need.present = analyser.presence(need.name, folder, None) if need.present is None else need.present
        if not matches:
            unsafe = is_unsafe_name(ref.name) or bool(folder and is_unsafe_name(folder))
            added = ModelNeed(ref.name, folder, ref.node_id, None, ref.url,
                              analyser.presence(ref.name, folder, None), unsafe, _sha256_hex(ref.hash))
            needs.append(added)
            by_file.setdefault(_file_key(ref.name), []).append(added)
    for need in needs:
        if need.folder and is_unsafe_name(need.folder):
            need.unsafe = True
    return needs


@without_cyclic_gc
def analyse(
    workflow: Workflow,
    object_info: dict[str, Any],
    server_models: dict[str, list[str]] | None = None,
    conversion: ConversionResult | None = None,
) -> Needs:
    """Missing node classes and every model the workflow references, with presence on the server.

    Pass ``conversion`` (the workflow's :func:`to_api` result) to avoid converting twice.
    """
    analyser = _Analyser(object_info, server_models)
    graph = expand_group_nodes(workflow.graph, object_info, []) if workflow.ui is not None else None
    if graph is not None:
        types = {n.type for n in graph.all_nodes() if n.type not in graph.subgraphs}
        types -= {t for t in VIRTUAL_NODE_TYPES if t not in object_info}
    else:
        types = {n["class_type"] for n in (workflow.api or {}).values()}
    conversion = conversion or to_api(workflow, object_info)
    needs = analyser.from_prompt(conversion.prompt) + analyser.from_unknown_nodes(graph)
    needs = _merge_metadata(needs, workflow, analyser)
    missing = sorted(t for t in types if t not in object_info)
    packs = pack_refs(graph) if graph is not None else {}
    return Needs(missing, needs, sorted(types), sorted(conversion.unknown_types), packs)
