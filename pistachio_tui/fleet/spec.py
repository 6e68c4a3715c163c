"""Batch definitions and their expansion into jobs with stable ids.

A job's id and every value in it derive only from the spec and the batch's own
seed, so expanding the same spec again (after Ctrl-C, a crash, or on another
machine) yields the same jobs — that is what lets a journal say which are done.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pistachio_tui.workflow.edit import find_params
from pistachio_tui.workflow.seeds import SEED_MAX, SEED_MODES

_CHOICE = re.compile(r"\{([^{}]*\|[^{}]*)\}")
_WILDCARD_FILE = re.compile(r"__([\w./-]+?)__")
#: The most jobs one batch makes (its job ids number them in five digits).
MAX_JOBS = 100_000


class BatchSpecError(ValueError):
    """The batch file or flags cannot make a batch; the message says what to change."""


@dataclass(frozen=True)
class EndpointSpec:
    """A RunPod serverless endpoint of the batch.

    ``cost_per_s`` is the endpoint's price per worker-second as the user pays it:
    RunPod's API does not say what a serverless job costs.
    """

    id: str
    cost_per_s: float | None = None


@dataclass
class BatchSpec:
    """What to run: one workflow and how each job varies from it, and where it goes."""

    workflow: Path
    count: int = 1
    seed_mode: str = "random"
    #: Seeds the random choices of the batch (random seeds, wildcards).
    batch_seed: int = 0
    #: The seed of the first job in increment/fixed mode; None starts from the workflow's own.
    start_seed: int | None = None
    prompts: list[str] = field(default_factory=list)
    #: Parameter name (as understood by the workflow editor: "cfg", "steps",
    #: "lora_strength", ...) to the values to try; the grid is their product.
    grid: dict[str, list[Any]] = field(default_factory=dict)
    wildcard_dir: Path | None = None
    #: Serverless endpoints listed in the batch file (servers come from the caller).
    endpoints: list[EndpointSpec] = field(default_factory=list)
    #: The output folder named in the batch file, if any.
    out_dir: Path | None = None
    #: A short name for the batch (the file's stem): the default output folder is named after it.
    name: str = ""

    def __post_init__(self) -> None:
        if self.seed_mode not in SEED_MODES:
            raise BatchSpecError(f"seed mode must be one of {', '.join(SEED_MODES)}, not {self.seed_mode!r}")
        if self.count < 1:
            raise BatchSpecError(f"count must be at least 1, not {self.count}")
        for name, values in self.grid.items():
            if not values:
                raise BatchSpecError(f"grid parameter {name!r} has no values")


@dataclass(frozen=True)
class Job:
    """One prompt to run: the changes to make to the workflow, and its id."""

    id: str
    index: int
    seed: int | None
    prompt_text: str | None
    params: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """The job's parameters as they go into the manifest."""
        return {"seed": self.seed, "prompt": self.prompt_text, **self.params}


def _job_id(index: int, payload: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return f"{index:05d}-{digest[:8]}"


class Wildcards:
    """Expands ``{a|b|c}`` choices and ``__name__`` lines from ``name.txt`` files."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        self._files: dict[str, list[str]] = {}

    def _lines(self, name: str) -> list[str]:
        if name not in self._files:
            if self._directory is None:
                raise BatchSpecError(f"prompt uses __{name}__ but no wildcard folder was given")
            path = (self._directory / f"{name}.txt").resolve()
            if self._directory.resolve() not in path.parents:
                raise BatchSpecError(f"wildcard __{name}__ points outside the wildcard folder")
            try:
                lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
            except OSError as exc:
                raise BatchSpecError(f"wildcard __{name}__: cannot read {path} ({exc.strerror})") from None
            self._files[name] = [ln for ln in lines if ln and not ln.startswith("#")]
            if not self._files[name]:
                raise BatchSpecError(f"wildcard file {path} has no lines")
        return self._files[name]

    def expand(self, text: str, rng: random.Random) -> str:
        # Files first: a wildcard line may itself contain {a|b} choices.
        for _ in range(10):
            new = _WILDCARD_FILE.sub(lambda m: rng.choice(self._lines(m.group(1))), text)
            new = _CHOICE.sub(lambda m: rng.choice(m.group(1).split("|")), new)
            if new == text:
                break
            text = new
        return text


def workflow_seed(prompt: dict[str, Any]) -> int | None:
    """The seed an API prompt already has (its first sampler's), if any."""
    for param in find_params(prompt):
        if param.kind == "seed" and isinstance(param.value, int) and not isinstance(param.value, bool):
            return param.value
    return None


def expand(spec: BatchSpec, base_seed: int | None = None) -> list[Job]:
    """Every job of the batch, in a stable order.

    ``base_seed`` (the workflow's own, see :func:`workflow_seed`) is where increment and fixed
    modes start when the spec gives no ``start_seed``: counting up from it, the
    repeats of a prompt get different seeds (and images), not N copies of one
    that ComfyUI would serve from its cache.
    """
    grid_names = sorted(spec.grid)
    total = max(len(spec.prompts), 1) * math.prod(len(spec.grid[n]) for n in grid_names) * spec.count
    if total > MAX_JOBS:
        # Counted before any job is made: --count 100000000 took minutes and gigabytes.
        raise BatchSpecError(f"this batch would make {total:,} jobs; one batch runs at most {MAX_JOBS:,} "
                             "(job ids count to 99999) — split it into several")
    grid_points = [dict(zip(grid_names, combo)) for combo in itertools.product(*(spec.grid[n] for n in grid_names))]
    prompts: list[str | None] = list(spec.prompts) or [None]
    wildcards = Wildcards(spec.wildcard_dir)
    jobs: list[Job] = []
    index = 0
    for prompt in prompts:
        for point in grid_points:
            for repeat in range(spec.count):
                rng = random.Random(f"{spec.batch_seed}:{index}")
                seed = _seed_for(spec, repeat, rng, base_seed)
                text = wildcards.expand(prompt, rng) if prompt is not None else None
                payload = {"seed": seed, "prompt": text, "params": point}
                jobs.append(Job(_job_id(index, payload), index, seed, text, dict(point)))
                index += 1
    return jobs


def _seed_for(spec: BatchSpec, repeat: int, rng: random.Random, base_seed: int | None) -> int | None:
    if spec.seed_mode == "random":
        return rng.randrange(SEED_MAX)
    start = spec.start_seed if spec.start_seed is not None else base_seed
    if start is None:
        return None
    if spec.seed_mode == "increment":
        return (start + repeat) % SEED_MAX
    return start


def parse_grid_flag(flag: str) -> tuple[str, list[Any]]:
    """``cfg=4,5.5,7`` → ``("cfg", [4, 5.5, 7])``; numbers become numbers."""
    name, sep, values = flag.partition("=")
    if not sep or not name.strip() or not all(v.strip() for v in values.split(",")):
        raise BatchSpecError(f"--grid takes NAME=V1,V2,... (no empty value), not {flag!r}")
    return name.strip(), [_number_or_text(v.strip()) for v in values.split(",")]


def _number_or_text(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def load_batch_file(path: Path) -> BatchSpec:
    """A batch from a TOML file; relative paths in it are relative to the file.

    ```toml
    workflow = "portrait.json"
    count = 4
    seed_mode = "increment"
    start_seed = 1000
    prompts_file = "prompts.txt"
    wildcard_dir = "wildcards"
    output = "renders"                  # default: a folder under the user's data dir
    endpoints = ["abc123", { id = "def456", cost_per_s = 0.00031 }]
    [grid]
    cfg = [4.0, 6.0]
    ```
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BatchSpecError(f"cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BatchSpecError(f"{path} is not a text file (a batch file is TOML)") from None
    except tomllib.TOMLDecodeError as exc:
        # The stdlib message ends with "(at line N, column M)".
        raise BatchSpecError(f"{path} is not valid TOML: {exc}") from None
    if "workflow" not in data:
        raise BatchSpecError(f"{path} has no 'workflow' (the workflow file to run)")
    base = path.parent
    prompts = list(data.get("prompts", []))
    if "prompts_file" in data:
        prompts += read_prompts_file(base / data["prompts_file"])
    try:
        return BatchSpec(
            workflow=base / data["workflow"],
            count=int(data.get("count", 1)),
            seed_mode=str(data.get("seed_mode", "random")),
            batch_seed=int(data.get("batch_seed", 0)),
            start_seed=int(data["start_seed"]) if "start_seed" in data else None,
            prompts=prompts,
            grid={str(k): list(v) for k, v in dict(data.get("grid", {})).items()},
            wildcard_dir=base / data["wildcard_dir"] if "wildcard_dir" in data else None,
            endpoints=[_endpoint(entry) for entry in data.get("endpoints", [])],
            out_dir=base / data["output"] if "output" in data else None,
            name=path.stem,
        )
    except (TypeError, ValueError) as exc:
        raise BatchSpecError(f"{path}: {exc}") from None


def _endpoint(entry: Any) -> EndpointSpec:
    """``"abc123"`` or ``{id = "abc123", cost_per_s = 0.00031}``."""
    if isinstance(entry, str) and entry.strip():
        return EndpointSpec(entry.strip())
    if isinstance(entry, dict) and str(entry.get("id", "")).strip():
        cost = entry.get("cost_per_s")
        if cost is not None and (not isinstance(cost, (int, float)) or cost < 0):
            raise ValueError(f"endpoint {entry['id']}: cost_per_s must be a number of dollars per second")
        return EndpointSpec(str(entry["id"]).strip(), float(cost) if cost is not None else None)
    raise ValueError(f"an endpoint is an id or {{ id = \"…\", cost_per_s = … }}, not {entry!r}")


def read_prompts_file(path: Path) -> list[str]:
    """One prompt per non-empty line; lines starting with ``#`` are comments."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BatchSpecError(f"cannot read prompts file {path} ({exc.strerror})") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
