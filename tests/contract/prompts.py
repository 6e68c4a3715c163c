"""Prompts that run on a real CPU-only ComfyUI with no model files, and on the simulator alike."""

from __future__ import annotations

import itertools
import time
from typing import Any

_colours = itertools.count(int(time.time() * 1000) % 10_000_000)


def fresh_colour() -> int:
    """A colour no earlier run used, so the server's cache does not skip the nodes."""
    return next(_colours) % 0xFFFFFF


def quick_prompt(prefix: str = "contract") -> dict[str, Any]:
    """EmptyImage → SaveImage: done in milliseconds."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1,
                                                      "color": fresh_colour()}},
        "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["1", 0]}},
    }


def slow_prompt(blurs: int = 6) -> dict[str, Any]:
    """EmptyImage → ``blurs`` × ImageBlur → PreviewImage: about half a second per blur on a real CPU."""
    prompt: dict[str, Any] = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512, "batch_size": 2,
                                                      "color": fresh_colour()}},
    }
    previous = "1"
    for index in range(2, 2 + blurs):
        prompt[str(index)] = {"class_type": "ImageBlur",
                              "inputs": {"image": [previous, 0], "blur_radius": 5, "sigma": 2.0}}
        previous = str(index)
    prompt["99"] = {"class_type": "PreviewImage", "inputs": {"images": [previous, 0]}}
    return prompt
