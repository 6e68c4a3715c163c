"""The app's start-up beside a prompt journal of 100,000 prompts, and each kind of search in it.

The journal is filled once with synthetic prompts (checkpoint, LoRA, seed,
prompt text, three servers, a few months of timestamps) in the system temp
folder and reused. Each search is the median of several runs; the goal is
under 50 ms for every one. Start-up is the first paint with that journal in
the data folder against an empty data folder: it must not grow.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import Figure, bench_main
from pistachio_tui.journal import Journal, JournalEntry

WORDS = ("portrait cinematic lighting forest castle neon city rain girl knight dragon sunset ocean "
         "mountain robot cat dog flowers snow desert spaceship watercolor photo anime oil painting").split()
CHECKPOINTS = ("sd_xl_base_1.0.safetensors", "flux1-dev-fp8.safetensors", "ponyDiffusionV6XL.safetensors",
               "juggernautXL_v9.safetensors")
LORAS = tuple(f"style_{name}_v{v}.safetensors" for name in ("ink", "pixel", "film", "clay", "glow") for v in (1, 2))
SERVERS = ("http://127.0.0.1:8188", "http://10.0.0.5:8188", "https://abc123-8188.proxy.runpod.net")
WORKFLOWS = ("txt2img", "sdxl_lora", "flux_dev", "upscale_2x", "img2img")
#: The newest synthetic prompt; the others go back about 100 days from here.
NEWEST = 1_760_000_000.0


def synthetic_prompt(rng: random.Random, n: int) -> JournalEntry:
    positive = " ".join(rng.choice(WORDS) for _ in range(12))
    seed = rng.randrange(2**32)
    checkpoint, lora = rng.choice(CHECKPOINTS), rng.choice(LORAS)
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": lora, "strength_model": 0.8,
                                                       "strength_clip": 0.8, "model": ["4", 0], "clip": ["4", 1]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality", "clip": ["10", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": 25, "cfg": 6.5, "sampler_name": "euler",
                                                    "scheduler": "normal", "denoise": 1.0, "model": ["10", 0],
                                                    "positive": ["6", 0], "negative": ["7", 0],
                                                    "latent_image": ["5", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }
    started = NEWEST - (100_000 - n) * 86.4
    status = "error" if n % 50 == 0 else "success"
    return JournalEntry(server=SERVERS[n % len(SERVERS)], prompt_id=f"{rng.getrandbits(128):032x}", status=status,
                        prompt=prompt, workflow=rng.choice(WORKFLOWS), queued_at=started - 2, started_at=started,
                        finished_at=started + 12, outputs=(f"ComfyUI_{n:05}_.png",),
                        error="CUDA out of memory" if status == "error" else None)


def synthetic_journal(count: int) -> Path:
    """A journal file of ``count`` synthetic prompts in the temp folder (made once, then reused)."""
    path = Path(tempfile.gettempdir()) / f"pistachio-bench-journal-{count}" / "journal.sqlite3"
    if path.exists():
        return path
    partial = path.parent.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    rng = random.Random(count)
    with Journal(partial / path.name, max_entries=max(count, 1)) as journal:
        for first in range(0, count, 1000):
            batch = [synthetic_prompt(rng, n) for n in range(first, min(count, first + 1000))]
            # Seen when the batch's last prompt finished: never before a prompt was queued.
            journal.record(batch, now=max(entry.finished_at or 0 for entry in batch))
    partial.rename(path.parent)
    return path


def median_ms(fn: Callable[[], object], runs: int = 7) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def searches(journal: Journal) -> dict[str, Callable[[], object]]:
    """What a person looks for in the history, as the Queue screen and ``pistachio history`` ask it."""
    return {
        "newest page": lambda: journal.search(limit=100),
        "text, common word": lambda: journal.search("portrait"),
        "text, two words": lambda: journal.search("neon dragon"),
        "text, no match": lambda: journal.search("zeppelin"),
        "LoRA name": lambda: journal.search("style_ink_v2"),
        "checkpoint name": lambda: journal.search("flux1"),
        "seed": lambda: journal.search(seed=123456789),
        "server": lambda: journal.search(server=SERVERS[2]),
        "server and text": lambda: journal.search("castle", server=SERVERS[1]),
        "date range": lambda: journal.search(since=NEWEST - 30 * 86400, until=NEWEST - 29 * 86400),
        "failed only": lambda: journal.search(status="error"),
    }


def search_times(count: int) -> dict[str, float]:
    with Journal(synthetic_journal(count), max_entries=max(count, 1)) as journal:
        return {name: median_ms(fn) for name, fn in searches(journal).items()}


def startup_with_journal(count: int, runs: int) -> float:
    """Median first paint (s) of the app whose data folder holds a journal of ``count`` prompts."""
    from benchmarks.bench_startup import measure

    with tempfile.TemporaryDirectory() as data:
        if count:
            shutil.copy(synthetic_journal(count), Path(data) / "journal.sqlite3")
        return measure("pistachio", runs, env={"PISTACHIO_DATA_DIR": data})[0]


def run(args) -> list[Figure]:
    big = 100_000
    small = search_times(100)
    large = search_times(big)
    figures = [Figure(f"journal search at 100k: {name}", ms, "ms", "same search at 100 prompts", small[name],
                      note="goal < 50 ms") for name, ms in large.items()]
    worst = max(large, key=large.__getitem__)
    figures.append(Figure("journal search at 100k: slowest", large[worst], "ms", "goal", 50.0, note=worst))
    runs = 3 if args.quick else 5
    empty = startup_with_journal(0, runs)
    full = startup_with_journal(big, runs)
    figures.append(Figure("first paint with a 100k journal", full, "s", "with no journal", empty,
                          note="must not grow: the journal opens after the first paint"))
    return figures


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run))
