"""Build a batch run from a spec and a list of servers — the one path the CLI and the UI share.

``prepare_batch`` expands the jobs, converts the workflow with a reachable
server's nodes, checks every job can be built, and reads the prices of the
targets that bill; the ``PreparedBatch`` it returns makes a fresh
``BatchRunner`` (with fresh connections) for every start or resume.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import ComfyError
from pistachio_tui.config import ServerConfig, data_dir, env_override, get_secret
from pistachio_tui.fleet.comfy_target import ComfyTarget
from pistachio_tui.fleet.cost import Rate, endpoint_rate, pod_rates
from pistachio_tui.fleet.dispatch import BatchEvent, BatchRunner
from pistachio_tui.fleet.serverless import RUNPOD_SERVERLESS_URL, ServerlessTarget
from pistachio_tui.fleet.spec import BatchSpec, BatchSpecError, Job, expand, workflow_seed
from pistachio_tui.fleet.targets import Target
from pistachio_tui.remedies import Need
from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.edit import apply_seed_mode, find_params, set_param
from pistachio_tui.workflow.errors import WorkflowError
from pistachio_tui.workflow.load import Workflow, load_workflow
from pistachio_tui.workflow.seeds import SEED_MAX

#: Jobs queued at once on each ComfyUI server unless told otherwise.
DEFAULT_MAX_AHEAD = 2


class BatchSetupError(Exception):
    """The batch cannot start as set up; the message says what to change."""


class NoReachableTarget(BatchSetupError):
    """No server answered and there is no endpoint: nothing could run a job."""


def job_prompt(base: dict[str, Any], job: Job) -> dict[str, Any]:
    """A copy of ``base`` with the job's seed, prompt text and grid values written in.

    Prompt text goes to the positive prompt when the graph shows one (the text
    encoder feeding a sampler's ``positive``), else to the only prompt there is.
    """
    prompt = copy.deepcopy(base)
    if job.seed is not None and any(p.kind == "seed" for p in find_params(prompt)):
        apply_seed_mode(prompt, "fixed", value=job.seed)
    if job.prompt_text is not None:
        roles = {p.role for p in find_params(prompt) if p.kind == "prompt"}
        set_param(prompt, "positive" if "positive" in roles else "prompt", job.prompt_text)
    for name, value in job.params.items():
        set_param(prompt, name, value)
    return prompt


def check_jobs(base: dict[str, Any], jobs: list[Job]) -> None:
    """Raise :class:`WorkflowError` now, before any target is busy, if a job cannot be built."""
    if not jobs:
        raise WorkflowError("the batch has no jobs", path="$", expected="at least one job")
    for job in jobs:
        for name, value in job.describe().items():
            if isinstance(value, float) and not math.isfinite(value):
                raise WorkflowError(f"{name} = {value} is not a number a server can take", path=name,
                                    expected="a finite number")
    seeds = {job.seed for job in jobs}
    if len(seeds) > 1 and not any(p.kind == "seed" for p in find_params(base)):
        raise WorkflowError("this workflow has no seed to vary; vary its prompt text or a parameter grid instead",
                            path="seed", expected="a sampler with a seed input")
    # Every grid point once: a value only the third point holds must fail here, not mid-run.
    built: set[str] = set()
    for job in jobs:
        point = json.dumps(job.params, sort_keys=True, default=str)
        if point not in built:
            built.add(point)
            job_prompt(base, job)


def batches_dir() -> Path:
    """Where batches without an output folder of their own go: ``batches`` in the data folder."""
    return data_dir() / "batches"


def workflow_digest(prompt: dict[str, Any]) -> str:
    """A short digest of the API prompt a batch varies: an edited workflow is another batch."""
    text = json.dumps(prompt, sort_keys=True, ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def default_out_dir(spec: BatchSpec, digest: str | None = None) -> Path:
    """The batch file's ``output``, else a folder named after the batch (and, given it, the
    workflow's ``digest``) under :func:`batches_dir`.

    The name is stable, so loading the same batch file again resumes it; after
    the workflow is edited, the name changes and the batch starts afresh.
    """
    if spec.out_dir:
        return spec.out_dir
    name = _slug(spec.name or spec.workflow.stem)
    return batches_dir() / (f"{name}-{digest[:8]}" if digest else name)


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "-", name).strip("-.") or "batch"


def quick_sweep(prompt: dict[str, Any], name: str, count: int, seed_mode: str, *,
                stamp: str | None = None) -> BatchSpec:
    """A seed sweep of an API prompt (the workflow open in the editor) in a new output folder.

    The prompt is saved as ``workflow.json`` in that folder, so the batch is a
    file like any other and the folder says what made its images. Each sweep
    gets its own folder and random seeds: running it twice makes new images.
    """
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    out_dir = batches_dir() / f"{_slug(name)}-{stamp}"
    spec = BatchSpec(workflow=out_dir / "workflow.json", count=count, seed_mode=seed_mode,
                     batch_seed=random.randrange(SEED_MAX), out_dir=out_dir, name=name)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec.workflow.write_text(json.dumps(prompt, indent=2), encoding="utf-8")
    return spec


@dataclass
class PreparedBatch:
    """A batch ready to run: its jobs, the prompt they vary, where they go, what the targets cost."""

    spec: BatchSpec
    jobs: list[Job]
    base: dict[str, Any]
    out_dir: Path
    servers: list[ServerConfig]
    api_key: str | None = field(repr=False)
    max_ahead: int = DEFAULT_MAX_AHEAD
    #: ``workflow_digest`` of ``base``; the output folder's journal is tied to it.
    digest: str = ""
    rates: dict[str, Rate] = field(default_factory=dict)
    #: Servers that did not answer while the batch was prepared, and why.
    unreachable: dict[str, str] = field(default_factory=dict)
    #: Things the user may want to know that do not stop the batch (e.g. prices unknown).
    notes: list[str] = field(default_factory=list)

    @property
    def target_names(self) -> list[str]:
        return [s.name for s in self.servers] + [f"endpoint:{e.id}" for e in self.spec.endpoints]

    def make_targets(self) -> list[Target]:
        """New targets with their own connections (a runner closes them when done)."""
        targets: list[Target] = [
            ComfyTarget(ComfyClient(s.url, headers=dict(s.headers)), name=s.name, slots=self.max_ahead)
            for s in self.servers
        ]
        if self.spec.endpoints:
            base_url = env_override("RUNPOD_SERVERLESS_URL") or RUNPOD_SERVERLESS_URL
            # LoadImage files next to the workflow go with each job: the worker has only its own.
            targets += [ServerlessTarget(e.id, self.api_key or "", base_url=base_url,
                                         input_dirs=[self.spec.workflow.parent]) for e in self.spec.endpoints]
        return targets

    def runner(self, on_event: Callable[[BatchEvent], None] | None = None) -> BatchRunner:
        """A runner over fresh targets; finished jobs in the output folder's journal are skipped."""
        node_types = {node["class_type"] for node in self.base.values()}
        extra = {"workflow": str(self.spec.workflow), "params": sorted({p.kind for p in find_params(self.base)})}
        return BatchRunner(self.jobs, self.make_targets(), self.out_dir, lambda job: job_prompt(self.base, job),
                           node_types=node_types, on_event=on_event, manifest_extra=extra, rates=self.rates,
                           workflow=self.digest or workflow_digest(self.base))


async def prepare_batch(spec: BatchSpec, servers: list[ServerConfig], *, out_dir: Path | None = None,
                        max_ahead: int = DEFAULT_MAX_AHEAD,
                        object_info: dict[str, Any] | None = None) -> PreparedBatch:
    """Everything a batch needs before its first job, checked now rather than mid-run.

    A UI workflow is converted with the node list of the first server that answers, or with
    ``object_info`` (a saved ``/object_info``) when no server is given or none answers.

    Raises ``BatchSpecError`` (the spec), ``BatchSetupError`` (no key for the
    endpoints), ``NoReachableTarget``, ``WorkflowError`` (the workflow cannot
    make these jobs) and ``ConfigError`` (an unreadable secrets file).
    """
    if not spec.workflow.is_file():
        raise BatchSpecError(f"workflow {spec.workflow} not found (a batch file's 'workflow' is relative to it)")
    if not servers and not spec.endpoints:
        raise BatchSetupError("no targets: give at least one ComfyUI server or serverless endpoint")
    api_key = get_secret("RUNPOD_API_KEY")
    if spec.endpoints and not api_key:
        raise BatchSetupError("serverless endpoints need RUNPOD_API_KEY (env var, or secrets.toml in the config dir)")
    # The file first: a broken workflow is the caller's to fix, whichever servers answer.
    loaded = await asyncio.to_thread(load_workflow, spec.workflow)
    answered, unreachable = await _first_object_info(servers)
    object_info = answered if answered is not None else object_info
    if answered is None and not spec.endpoints:
        reasons = "; ".join(f"{name}: {why}" for name, why in unreachable.items())
        raise NoReachableTarget(f"no server answers — {reasons}")
    base = await asyncio.to_thread(_base_prompt, loaded, object_info)
    jobs = expand(spec, workflow_seed(base))
    check_jobs(base, jobs)
    rates, note = await pod_rates({s.name: s.url for s in servers}, api_key)
    for endpoint in spec.endpoints:
        rate = endpoint_rate(endpoint.cost_per_s)
        if rate is not None:
            rates[f"endpoint:{endpoint.id}"] = rate
    digest = workflow_digest(base)
    return PreparedBatch(spec, jobs, base, out_dir or default_out_dir(spec, digest), list(servers), api_key,
                         max_ahead, digest, rates, unreachable, [note] if note else [])


async def _first_object_info(servers: list[ServerConfig]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The node set of the first server (in the given order) that answers, and why the others did not."""
    async def ask(server: ServerConfig) -> dict[str, Any] | str:
        try:
            async with ComfyClient(server.url, headers=dict(server.headers)) as client:
                return await client.object_info()
        except ComfyError as exc:
            return exc.message

    answers = await asyncio.gather(*(ask(s) for s in servers))
    unreachable = {s.name: a for s, a in zip(servers, answers) if isinstance(a, str)}
    found = next((a for a in answers if isinstance(a, dict)), None)
    return found, unreachable


class NodeListNeeded(BatchSetupError):
    """A UI workflow, and no node list to convert it with."""

    needs = Need.NODE_LIST


def _base_prompt(loaded: Workflow, object_info: dict[str, Any] | None) -> dict[str, Any]:
    """The workflow as an API prompt, converted with the given node list.

    Without one, only a workflow that is already an API prompt (or an image carrying one) can
    run: guessing the node list would silently drop a custom node's inputs.
    """
    if loaded.api is not None:
        return loaded.api
    if object_info is None:
        raise NodeListNeeded(
            f"{loaded.source or loaded.name} is in the editor's format and converting it needs the node list "
            "of a ComfyUI server that answers (its /object_info)")
    return to_api(loaded, object_info).prompt
