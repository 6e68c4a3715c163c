"""What a batch has cost so far on the targets that bill: RunPod pods and serverless endpoints.

A pod bills by the hour whether it works or not, so the batch's share is its
$/h for the time the batch kept it busy (at least one of our jobs on it). A
serverless endpoint bills each worker by the second while it runs a job, so
there the seconds are RunPod's own ``executionTime`` of each job (a
:class:`Metered` target): wall-clock time from submit would count the wait in
the endpoint's queue, which does not bill (four 30 s jobs on one worker: about
300 s counted against 120 s billed). A job's ``delayTime`` (queue wait plus
cold start) is reported beside it, not priced: only its cold-start part bills
and RunPod does not say how much of it that is. Local servers cost nothing we
can know and stay unpriced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pistachio_tui.runpod.errors import RunPodError
from pistachio_tui.runpod.pods import current_pod_id

#: ``https://{podId}-{port}.proxy.runpod.net``: RunPod's HTTP proxy in front of a pod's port.
_POD_PROXY = re.compile(r"^https?://([a-z0-9]+)-\d+\.proxy\.runpod\.net(?:[:/]|$)", re.I)
_LOOPBACK = re.compile(r"^https?://(?:127\.0\.0\.1|localhost)(?:[:/]|$)", re.I)


@dataclass(frozen=True)
class Rate:
    """A target's price in dollars per second, and what it is charged on."""

    per_s: float
    #: True for serverless (every job's own seconds), False for a pod (seconds with a job on it).
    per_job: bool
    #: Where the price comes from, for people: "pod abc123 at $0.69/h".
    source: str


@runtime_checkable
class Metered(Protocol):
    """A target that knows the seconds it was billed for (``serverless.ServerlessTarget``)."""

    def billed_seconds(self) -> float: ...


class Busy(Protocol):
    """How long a target has worked for the batch (``dispatch.TargetStats``)."""

    def busy_until(self, now: float) -> float: ...

    def job_time_until(self, now: float) -> float: ...


def pod_id_for_url(url: str, this_pod: str | None = None) -> str | None:
    """The RunPod pod behind a ComfyUI URL: its proxy URL, or loopback when we run on that pod."""
    match = _POD_PROXY.match(url)
    if match:
        return match.group(1)
    if this_pod and _LOOPBACK.match(url):
        return this_pod
    return None


def endpoint_rate(cost_per_s: float | None) -> Rate | None:
    """The rate of a serverless endpoint with the price the batch file gives, if any."""
    if cost_per_s is None:
        return None
    return Rate(cost_per_s, True, f"${cost_per_s:g}/s from the batch file")


async def pod_rates(servers: dict[str, str], api_key: str | None, *,
                    runpod_url: str | None = None, timeout: float = 10.0) -> tuple[dict[str, Rate], str | None]:
    """Rates of the servers (name → URL) that are RunPod pods, from the pods' ``costPerHr``.

    Returns the rates and, when prices could not be read, why (the batch runs
    anyway: a missing price is not a reason to stop work).
    """
    this_pod = current_pod_id()
    pods = {name: pod_id for name, url in servers.items() if (pod_id := pod_id_for_url(url, this_pod))}
    if not pods:
        return {}, None
    if not api_key:
        return {}, "pod prices unknown: set RUNPOD_API_KEY to see what the batch costs"
    from pistachio_tui.runpod.api import RunPodClient

    try:
        async with RunPodClient(api_key, url=runpod_url, timeout=timeout) as client:
            by_id = {pod.id: pod for pod in await client.pods()}
    except RunPodError as exc:
        return {}, f"pod prices unknown: {exc}"
    rates = {}
    for name, pod_id in pods.items():
        pod = by_id.get(pod_id)
        if pod is not None and pod.cost_per_hr > 0:
            rates[name] = Rate(pod.cost_per_hr / 3600, False, f"pod {pod_id} at ${pod.cost_per_hr:g}/h")
    return rates, None


def cost_of(rate: Rate, busy: Busy, now: float, metered: Metered | None = None) -> float:
    """Dollars the target has cost the batch up to ``now`` (billed seconds when it is metered)."""
    if rate.per_job:
        seconds = metered.billed_seconds() if metered is not None else busy.job_time_until(now)
    else:
        seconds = busy.busy_until(now)
    return rate.per_s * seconds


def cost_summary(rates: Mapping[str, Rate], stats: Mapping[str, Busy], now: float,
                 metered: Mapping[str, Metered] | None = None) -> dict[str, Any]:
    """Cost so far as it goes into the manifest and the CLI's ``--json``: total and per target."""
    metered = metered or {}
    targets = {name: round(cost_of(rate, stats[name], now, metered.get(name)), 4)
               for name, rate in rates.items() if name in stats}
    return {
        "currency": "USD",
        "total": round(sum(targets.values()), 4),
        "targets": targets,
        "rates": {name: rate.source for name, rate in rates.items()},
        "unpriced": sorted(set(stats) - set(rates)),
        "billed_s": {name: round(m.billed_seconds(), 3) for name, m in metered.items()},
    }
