"""The demo's "downloaded from the internet" workflow and the stand-in for the model host.

The workflow is what a first-time user typically downloads: a UI-format graph
(as the official frontend saves it, each custom node carrying its pack's
``cnr_id`` / ``ver``) that upscales with UltimateSDUpscale and writes a GIF
with VideoHelperSuite (two node packs the simulated server lacks until its
Manager installs them), a checkpoint saved on Windows under a subfolder
(``SDXL\\...``: the server has the file, under another name) and two models
the server does not have at all, with ``models`` metadata pointing at their
download addresses. Those addresses are on :class:`ModelHost`, a local HTTP
server answering like a file host (``Content-Length``, ``Range``), so the
demo needs no network. Everything here is simulated, and says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
from typing import Any

from aiohttp import web

BROKEN_WORKFLOW_FILE = "SIMULATED-downloaded-upscale-to-gif.json"
#: The checkpoint as the workflow names it (saved on Windows) and as the demo server has it.
CHECKPOINT_ASKED = "SDXL\\sd_xl_base_1.0.safetensors"
CHECKPOINT_ON_SERVER = "sd_xl_base_1.0.safetensors"
#: (file name, models folder, size in bytes) of the files only the model host has.
HOSTED_MODELS: list[tuple[str, str, int]] = [
    ("4x-UltraSharp.pth", "upscale_models", 3 * 1024 * 1024),
    ("sdxl_vae_SIMULATED.safetensors", "vae", 2 * 1024 * 1024),
]
_CHUNK = 64 * 1024

# (id, type, widgets_values, {input: (source id, source slot, type)}, [output types], properties)
_Node = tuple[int, str, list[Any], dict[str, tuple[int, int, str]], list[str], dict[str, Any]]
_USDU = {"cnr_id": "comfyui_ultimatesdupscale", "ver": "1.3.2"}
_VHS = {"cnr_id": "comfyui-videohelpersuite", "ver": "1.7.4"}
_CORE = {"cnr_id": "comfy-core", "ver": "0.8.0"}


def _nodes() -> list[_Node]:
    upscaler, vae = HOSTED_MODELS[0][0], HOSTED_MODELS[1][0]
    return [
        (1, "CheckpointLoaderSimple", [CHECKPOINT_ASKED], {}, ["MODEL", "CLIP", "VAE"], _CORE),
        (2, "CLIPTextEncode", ["a pistachio orchard at dawn, SIMULATED"], {"clip": (1, 1, "CLIP")},
         ["CONDITIONING"], _CORE),
        (3, "CLIPTextEncode", ["blurry"], {"clip": (1, 1, "CLIP")}, ["CONDITIONING"], _CORE),
        (4, "EmptyLatentImage", [512, 512, 1], {}, ["LATENT"], _CORE),
        (5, "KSampler", [7, "fixed", 8, 7.0, "euler", "normal", 1.0],
         {"model": (1, 0, "MODEL"), "positive": (2, 0, "CONDITIONING"), "negative": (3, 0, "CONDITIONING"),
          "latent_image": (4, 0, "LATENT")}, ["LATENT"], _CORE),
        (6, "VAELoader", [vae], {}, ["VAE"], _CORE),
        (7, "VAEDecode", [], {"samples": (5, 0, "LATENT"), "vae": (6, 0, "VAE")}, ["IMAGE"], _CORE),
        (8, "UpscaleModelLoader", [upscaler], {}, ["UPSCALE_MODEL"], _CORE),
        (9, "UltimateSDUpscale", [2.0, 7, "fixed", 4, 7.0, "euler", "normal", 0.2, "Linear", 512, 512],
         {"image": (7, 0, "IMAGE"), "model": (1, 0, "MODEL"), "positive": (2, 0, "CONDITIONING"),
          "negative": (3, 0, "CONDITIONING"), "vae": (6, 0, "VAE"), "upscale_model": (8, 0, "UPSCALE_MODEL")},
         ["IMAGE"], _USDU),
        (10, "VHS_VideoCombine", [8, 0, "SIMULATED-demo", "image/gif", False, True], {"images": (9, 0, "IMAGE")},
         ["VHS_FILENAMES"], _VHS),
        (11, "SaveImage", ["SIMULATED-demo"], {"images": (7, 0, "IMAGE")}, [], _CORE),
    ]


def broken_workflow(host_url: str) -> dict[str, Any]:
    """The demo's broken UI workflow, its ``models`` metadata pointing at ``host_url``."""
    links: list[list[Any]] = []
    outputs: dict[tuple[int, int], list[int]] = {}
    nodes = []
    spec = _nodes()
    for node_id, type_, widgets, inputs, _outs, properties in spec:
        ui_inputs = []
        for slot, (name, (src, src_slot, kind)) in enumerate(inputs.items()):
            link_id = len(links) + 1
            links.append([link_id, src, src_slot, node_id, slot, kind])
            outputs.setdefault((src, src_slot), []).append(link_id)
            ui_inputs.append({"name": name, "type": kind, "link": link_id})
        nodes.append({"id": node_id, "type": type_, "pos": [node_id * 320, 0], "size": [300, 120], "flags": {},
                      "order": node_id, "mode": 0, "inputs": ui_inputs,
                      "properties": {"Node name for S&R": type_, **properties}, "widgets_values": widgets})
    for node, (node_id, *_rest, outs, _props) in zip(nodes, spec):
        node["outputs"] = [{"name": kind, "type": kind, "links": outputs.get((node_id, slot), []),
                            "slot_index": slot} for slot, kind in enumerate(outs)]
    models = [{"name": name, "url": f"{host_url}/{name}", "directory": folder} for name, folder, _ in HOSTED_MODELS]
    return {
        "last_node_id": len(nodes), "last_link_id": len(links), "nodes": nodes, "links": links,
        "groups": [], "config": {}, "extra": {"note": "SIMULATED: made for the Pistachio demo"}, "version": 0.4,
        "models": models,
    }


def safetensors_bytes(size: int, seed: bytes) -> bytes:
    """A valid safetensors file of exactly ``size`` bytes (one uint8 tensor filled from ``seed``),
    as a download's content check expects of a real model."""
    def header(n: int) -> bytes:
        return json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()

    n = size - 8 - len(header(size))
    text = header(n)
    # A smaller n never has a longer header: pad with spaces, as safetensors allows.
    text += b" " * (size - 8 - n - len(text))
    return struct.pack("<Q", len(text)) + text + (seed * (n // len(seed) + 1))[:n]


def model_bytes(name: str, size: int) -> bytes:
    """The deterministic content of a hosted model (so a resumed download checks out)."""
    return safetensors_bytes(size, hashlib.sha256(name.encode()).digest())


class ModelHost:
    """A local file host for :data:`HOSTED_MODELS`, paced so the demo shows download progress."""

    def __init__(self, bytes_per_second: float = 4 * 1024 * 1024) -> None:
        self.bytes_per_second = bytes_per_second
        self._files = {name: model_bytes(name, size) for name, _folder, size in HOSTED_MODELS}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1") -> str:
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        data = self._files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="Entry not found")
        start = 0
        if request.http_range.start is not None:
            start = min(request.http_range.start, len(data))
        response = web.StreamResponse(status=206 if start else 200)
        response.content_length = len(data) - start
        if start:
            response.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        await response.prepare(request)
        for offset in range(start, len(data), _CHUNK):
            await response.write(data[offset:offset + _CHUNK])
            await asyncio.sleep(_CHUNK / self.bytes_per_second)
        await response.write_eof()
        return response
