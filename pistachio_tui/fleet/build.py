"""Turn a job into the API prompt it runs: the batch's workflow with the job's values."""

from __future__ import annotations

import copy
from typing import Any

from pistachio_tui.comfy.edit import apply_seed_mode, find_params, set_param
from pistachio_tui.comfy.workflow_error import WorkflowError
from pistachio_tui.fleet.spec import Job


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
    seeds = {job.seed for job in jobs}
    if len(seeds) > 1 and not any(p.kind == "seed" for p in find_params(base)):
        raise WorkflowError("this workflow has no seed to vary; vary it with --prompts or --grid instead",
                            path="seed", expected="a sampler with a seed input")
    job_prompt(base, jobs[0])
