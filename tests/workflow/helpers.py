"""Builders for workflow tests: images with metadata, small graphs, the template corpus."""

from __future__ import annotations

import importlib.util
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image

from tests.conftest import FIXTURES_DIR, load_fixture

NON_WORKFLOW_PREFIXES = ("index", "fuse_options")


def object_info() -> dict[str, Any]:
    return load_fixture("object_info")["body"]


def png_fixture() -> bytes:
    return (FIXTURES_DIR / "success_output.png").read_bytes()


def corpus_files() -> list[Path]:
    """Every workflow of the pinned official template package (not its index files)."""
    spec = importlib.util.find_spec("comfyui_workflow_templates_json")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(list(spec.submodule_search_locations)[0]) / "templates"
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(NON_WORKFLOW_PREFIXES))


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png_with_chunks(*chunks: bytes) -> bytes:
    """A 1×1 PNG with the given extra chunks before the image data."""
    base = png_fixture()
    ihdr_end = 8 + 12 + 13
    return base[:ihdr_end] + b"".join(chunks) + png_chunk(b"IEND", b"")


def webp_with_exif(tags: dict[int, str]) -> bytes:
    """A WebP whose EXIF IFD0 holds ``tags``, written the way ComfyUI's WebP savers do."""
    exif = Image.Exif()
    for tag, text in tags.items():
        exif[tag] = text
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "WEBP", exif=exif)
    return buf.getvalue()


def tiny_ui() -> dict[str, Any]:
    """checkpoint → two prompts → KSampler → decode → save, with a LoRA in between."""
    return json.loads(json.dumps(_TINY_UI))


def _node(nid, ntype, inputs, outputs, values, **extra):
    return {
        "id": nid, "type": ntype, "mode": 0, "properties": extra.pop("properties", {}),
        "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
        "outputs": [{"name": n, "type": t, "links": links} for n, t, links in outputs],
        "widgets_values": values, **extra,
    }


_TINY_UI = {
    "last_node_id": 9, "last_link_id": 11,
    "nodes": [
        _node(4, "CheckpointLoaderSimple", [], [("MODEL", "MODEL", [1]), ("CLIP", "CLIP", [2]), ("VAE", "VAE", [8])],
              ["sd_xl_base_1.0.safetensors"],
              properties={"models": [{"name": "sd_xl_base_1.0.safetensors", "url": "https://huggingface.co/x/y/resolve/main/sd_xl_base_1.0.safetensors", "directory": "checkpoints"}]}),
        _node(10, "LoraLoader", [("model", "MODEL", 1), ("clip", "CLIP", 2)],
              [("MODEL", "MODEL", [11]), ("CLIP", "CLIP", [3, 5])], ["detail.safetensors", 0.8, 0.6], title="Detail LoRA"),
        _node(6, "CLIPTextEncode", [("clip", "CLIP", 3)], [("CONDITIONING", "CONDITIONING", [4])], ["a red fox in snow"]),
        _node(7, "CLIPTextEncode", [("clip", "CLIP", 5)], [("CONDITIONING", "CONDITIONING", [6])], ["blurry, text"]),
        _node(5, "EmptyLatentImage", [], [("LATENT", "LATENT", [7])], [1024, 1024, 1]),
        _node(3, "KSampler", [("model", "MODEL", 11), ("positive", "CONDITIONING", 4), ("negative", "CONDITIONING", 6),
                              ("latent_image", "LATENT", 7)], [("LATENT", "LATENT", [9])],
              [42, "fixed", 25, 7.0, "euler", "normal", 1.0]),
        _node(8, "VAEDecode", [("samples", "LATENT", 9), ("vae", "VAE", 8)], [("IMAGE", "IMAGE", [10])], []),
        _node(9, "SaveImage", [("images", "IMAGE", 10)], [], ["fox"]),
    ],
    "links": [
        [1, 4, 0, 10, 0, "MODEL"], [2, 4, 1, 10, 1, "CLIP"], [3, 10, 1, 6, 0, "CLIP"], [5, 10, 1, 7, 0, "CLIP"],
        [4, 6, 0, 3, 1, "CONDITIONING"], [6, 7, 0, 3, 2, "CONDITIONING"], [7, 5, 0, 3, 3, "LATENT"],
        [8, 4, 2, 8, 1, "VAE"], [9, 3, 0, 8, 0, "LATENT"], [10, 8, 0, 9, 0, "IMAGE"], [11, 10, 0, 3, 0, "MODEL"],
    ],
    "groups": [], "config": {}, "extra": {}, "version": 0.4,
}
