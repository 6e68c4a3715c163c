"""Prompt journal search over 100,000 prompts, against a primary-key lookup in the same file.

The journal is filled once with synthetic prompts (a few servers, seeds, words
drawn with a skewed frequency so some words match a third of the prompts and
others a handful, checkpoint and LoRA names, every status) and kept in the
system temp folder for the next run. Each query of a varied set (common and
rare words, prefixes, seed, server, status, date range, combinations, no
match) is timed as the History screen runs it (newest 200 first); the median
and the worst over all queries are reported. The yardstick is ``Journal.get``
(one row by its unique key): what any SQLite read costs on this machine.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, bench_main, median_time
from pistachio_tui.journal import Journal, JournalEntry

#: What the History screen asks for; the CLI asks for 50.
LIMIT = 200
SERVERS = [f"http://10.0.0.{n}:8188" for n in range(1, 5)]
STATUSES = ["success"] * 16 + ["error", "interrupted", "lost", "queued"]
WORDS = ("portrait woman man castle forest fox dragon city night snow sunset ocean robot cat dog flower "
         "cinematic lighting detailed painting photo anime watercolor neon cyberpunk fantasy golden hour "
         "mountain river bokeh macro studio vintage film grain dramatic soft misty autumn winter spring").split()
CHECKPOINTS = ["sd_xl_base_1.0.safetensors", "[Pony] ponyDiffusionV6XL.safetensors", "juggernautXL_v9.safetensors",
               "flux1-dev-fp8.safetensors", "dreamshaper_8.safetensors"]
LORAS = [f"style_{n:03d}.safetensors" for n in range(300)]
T0 = 1_767_225_600.0  # 2026-01-01 UTC; one prompt every 3 minutes after it spans about 7 months


def api_prompt(rng: random.Random, seed: int) -> tuple[dict, str]:
    # Word frequencies fall off like real prompts: the first words are in many prompts, the last in few.
    words = [WORDS[min(int(rng.paretovariate(0.6)) - 1, len(WORDS) - 1)] for _ in range(rng.randint(6, 18))]
    text = " ".join(words)
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": rng.choice(CHECKPOINTS)}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": rng.choice(LORAS), "model": ["4", 0],
                                                      "clip": ["4", 1], "strength_model": 0.8, "strength_clip": 0.8}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, lowres", "clip": ["10", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": 25, "cfg": 6.5, "sampler_name": "euler",
                                                   "scheduler": "normal", "denoise": 1.0, "model": ["10", 0],
                                                   "positive": ["6", 0], "negative": ["7", 0],
                                                   "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }
    return prompt, text


def fill(journal: Journal, count: int) -> float:
    """Write ``count`` prompts in batches as the recorder does; returns the seconds it took."""
    rng = random.Random(20261201)
    start = time.perf_counter()
    for first in range(0, count, 1000):
        batch = []
        for n in range(first, min(first + 1000, count)):
            seed = rng.randrange(2**48)
            prompt, _ = api_prompt(rng, seed)
            queued = T0 + n * 180
            status = rng.choice(STATUSES)
            done = status in ("success", "error", "interrupted")
            batch.append(JournalEntry(
                rng.choice(SERVERS), f"{n:08d}-bench", status, prompt, workflow=f"{rng.choice(WORDS)}.json",
                queued_at=queued, started_at=queued + 2 if done else None,
                finished_at=queued + rng.uniform(5, 90) if done else None,
                outputs=(f"ComfyUI_{n:05d}_.png",) if status == "success" else (),
                error="CUDA out of memory" if status == "error" else None))
        journal.record(batch, now=T0 + first * 180)
    return time.perf_counter() - start


def open_filled(count: int) -> tuple[Journal, float | None]:
    """The journal with ``count`` prompts, written now (and the time it took) or reused from an earlier run."""
    path = Path(tempfile.gettempdir()) / f"pistachio-bench-journal-{count}.sqlite3"
    journal = Journal(path, max_entries=count)
    if journal.count() == count:
        return journal, None
    journal.close()
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    journal = Journal(path, max_entries=count)
    return journal, fill(journal, count)


def queries() -> list[dict]:
    rng = random.Random(7)
    day = 86400.0
    seed_rng = random.Random(20261201)
    known_seed = seed_rng.randrange(2**48)  # the first prompt's seed, drawn as fill() draws it
    return [
        {"text": "portrait"},                    # in a large share of prompts
        {"text": "woman man"},                   # two common words
        {"text": "misty"},                       # a rare word
        {"text": "autumn winter spring"},        # rare words together: few or no rows
        {"text": "drag"},                        # a prefix
        {"text": "pony"},                        # a checkpoint name
        {"text": "style_123"},                   # one LoRA among 300
        {"text": "xyzzy"},                       # no match at all
        {"seed": known_seed},
        {"seed": 12345},                         # a seed nobody used
        {"status": "lost"},
        {"server": SERVERS[2], "status": "error"},
        {"since": T0 + rng.uniform(30, 150) * day, "until": T0 + 180 * day},
        {"text": "castle night", "server": SERVERS[0]},
        {"text": "fox", "since": T0 + 100 * day, "status": "success"},
        {},                                      # the screen as it opens: the newest prompts
    ]


def run(args) -> list[Figure]:
    count = 10_000 if args.quick else 100_000
    journal, write_s = open_filled(count)
    try:
        def timed(query: dict) -> float:
            return median_time(lambda: journal.search(limit=LIMIT, **query), runs=5)

        timings = [(timed(query), query) for query in queries()]
        probe = journal.search(limit=1)[0]
        yardstick = median_time(lambda: journal.get(probe.server, probe.prompt_id), runs=21)
    finally:
        journal.close()
    times = [t for t, _ in timings]
    worst_t, worst_q = max(timings, key=lambda item: item[0])
    figures = [
        Figure(f"search median over {len(times)} queries", statistics.median(times) * 1000, "ms",
               "get one prompt", yardstick * 1000, note=f"{count:,} prompts, newest {LIMIT}; target < 50 ms"),
        Figure("search worst", worst_t * 1000, "ms", "get one prompt", yardstick * 1000,
               note=f"query {worst_q}; target < 50 ms"),
    ]
    if write_s is not None:
        figures.append(Figure(f"write {count:,} prompts", write_s, "s", note="batches of 1000, as the app writes"))
    return figures


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run))
