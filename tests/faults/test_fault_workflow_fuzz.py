"""Ten thousand generated files through the workflow loader: only WorkflowError escapes.

The inputs come from a seeded generator (hypothesis took ~30 s for as many):
random JSON of workflow-like shape, truncated JSON, bytes behind the PNG,
WebP, zip and UTF-16 signatures, real workflows with random values put at
random places in their JSON, and byte-level mutations of real files (the
bundled sample workflows and a PNG the real server saved). A failure names
the case number: item n of ``generate()`` reproduces it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

from pistachio_tui.workflow.load import WorkflowError, load_workflow
from tests.conftest import FIXTURES_DIR
from tests.faults.generators import json_value, mutate

CASES = 10_000
SEED = 20261122
REPO = Path(__file__).resolve().parents[2]
REAL_DOCS = [json.loads(p.read_text()) for p in sorted((REPO / "workflows").glob("*.json"))]
REAL_FILES = [p.read_bytes() for p in sorted((REPO / "workflows").glob("*.json"))] + [
    (FIXTURES_DIR / "success_output.png").read_bytes()]
#: Prefixes that send the loader down its PNG, WebP, zip and UTF-16 branches.
MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP", b"PK\x03\x04", b"\xff\xfe", b"\xef\xbb\xbf"]


def graft(rng: random.Random, doc):
    """``doc`` with a random value put at a random place (a node, an input, a link...)."""
    parent, key = None, None
    node = doc
    for _ in range(rng.randint(1, 6)):
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
        elif isinstance(node, list) and node:
            key = rng.randrange(len(node))
        else:
            break
        parent, node = node, node[key]
    if parent is None:
        return json_value(rng)
    parent[key] = json_value(rng)
    return doc


def generate(seed: int = SEED) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(CASES):
        kind = rng.random()
        if kind < 0.35:
            yield json.dumps(json_value(rng)).encode()
        elif kind < 0.5:
            text = json.dumps(json_value(rng))
            yield text[: rng.randint(0, len(text))].encode()
        elif kind < 0.65:
            yield rng.choice(MAGIC) + rng.randbytes(rng.randint(0, 48))
        elif kind < 0.85:
            doc = json.loads(json.dumps(rng.choice(REAL_DOCS)))
            for _ in range(rng.randint(1, 3)):
                doc = graft(rng, doc)
            yield json.dumps(doc).encode()
        else:
            yield mutate(rng, rng.choice(REAL_FILES))


def test_only_workflow_error_escapes_the_loader():
    loaded = rejected = 0
    for number, data in enumerate(generate()):
        try:
            load_workflow(data, name="fuzzed")
        except WorkflowError as exc:
            assert str(exc), f"case {number}: empty message"
            rejected += 1
        except Exception as exc:  # noqa: BLE001 - what escapes is the finding
            raise AssertionError(f"case {number} ({data[:80]!r}…) raised {type(exc).__name__}: {exc}") from exc
        else:
            loaded += 1
    assert loaded + rejected == CASES
    # Both outcomes must be common, or the generator is not exploring the loader.
    assert loaded > CASES // 20 and rejected > CASES // 4, (loaded, rejected)
