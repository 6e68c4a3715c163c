"""Seeded generators of malformed input for the fuzz tests: JSON values of workflow-like
and message-like shape, and byte-level mutations of real files."""

from __future__ import annotations

import random

KEYS = ["nodes", "links", "id", "type", "inputs", "outputs", "class_type", "prompt", "definitions", "subgraphs",
        "widgets_values", "models", "extra_data", "extra_pnginfo", "workflow", "link", "mode", "1", "x",
        "value", "max", "node", "prompt_id", "status", "exec_info"]


def json_value(rng: random.Random, depth: int = 0):
    """A small random JSON value; objects use keys workflows and messages really have."""
    roll = rng.random()
    if depth > 3 or roll < 0.45:
        return rng.choice([None, True, False, rng.randint(-3, 1 << 40), rng.random() * 1e6, float("nan"),
                           "".join(rng.choice("ab1 \\\"é") for _ in range(rng.randint(0, 5)))])
    if roll < 0.65:
        return [json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(KEYS): json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def mutate(rng: random.Random, data: bytes) -> bytes:
    """``data`` with one to four random edits: a changed byte, a cut, an inserted token, a truncation."""
    blob = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        at = rng.randrange(len(blob) + 1)
        if op < 0.4 and blob:
            blob[min(at, len(blob) - 1)] = rng.randrange(256)
        elif op < 0.7:
            del blob[at:at + rng.randint(1, 64)]
        elif op < 0.9:
            blob[at:at] = rng.choice([b"{", b"]", b"null", b'"nodes":', b"\x00", b"-1", b"1e999"])
        else:
            del blob[at:]
    return bytes(blob)
