"""What people want to know about a pod, derived from the API's data.

Uptime, an estimate of the spend so far, the ComfyUI URL (RunPod's HTTP proxy,
or loopback when Pistachio runs on the pod itself), the SSH command, and a
probe that says whether ComfyUI answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from pistachio_tui.config import ServerConfig, env_override
from pistachio_tui.format import MISSING, duration, money
from pistachio_tui.runpod.models import Account, Pod

COMFY_PORT = 8188
#: Warn when the balance lasts less than this many hours at the current spend.
LOW_BALANCE_HOURS = 24.0
#: Warn when the spend rate reaches this share of the account's spend limit.
SPEND_LIMIT_SHARE = 0.8
LOCAL_COMFY_URL = f"http://127.0.0.1:{COMFY_PORT}"
DEFAULT_SSH_KEY = "~/.ssh/id_ed25519"


def current_pod_id(environ: Mapping[str, str] | None = None) -> str | None:
    """The id of the pod Pistachio runs on (RunPod sets ``RUNPOD_POD_ID`` in every pod)."""
    return env_override("RUNPOD_POD_ID", environ)


def default_comfy_url(environ: Mapping[str, str] | None = None) -> str | None:
    """Loopback ComfyUI when running on a pod (no proxy hop, no proxy timeouts), else None."""
    return LOCAL_COMFY_URL if current_pod_id(environ) else None


def comfy_proxy_url(pod_id: str, port: int = COMFY_PORT) -> str:
    """RunPod's HTTPS proxy URL for an HTTP port of a pod; ``$RUNPOD_PROXY_URL`` (a template with
    ``{pod_id}`` and ``{port}``) replaces it, e.g. for the demo's simulated RunPod."""
    template = env_override("RUNPOD_PROXY_URL") or "https://{pod_id}-{port}.proxy.runpod.net"
    return template.format(pod_id=pod_id, port=port)


def comfy_url(pod: Pod, this_pod_id: str | None = None, port: int = COMFY_PORT) -> str:
    """Where to reach the pod's ComfyUI from here."""
    if this_pod_id is not None and pod.id == this_pod_id:
        return f"http://127.0.0.1:{port}"
    return comfy_proxy_url(pod.id, port)


def ssh_command(pod: Pod, key_path: str = DEFAULT_SSH_KEY) -> str | None:
    """The SSH command for a pod: direct TCP when port 22 is public, else RunPod's SSH proxy.

    The direct form supports scp/sftp; the proxy form is a terminal only.
    None for a pod that is not running.
    """
    if not pod.is_running:
        return None
    if pod.runtime is not None:
        for port in pod.runtime.ports:
            if port.private_port == 22 and port.is_ip_public and port.type == "tcp" and port.ip:
                return f"ssh root@{port.ip} -p {port.public_port} -i {key_path}"
    if pod.pod_host_id:
        return f"ssh {pod.pod_host_id}@ssh.runpod.io -i {key_path}"
    return None


def short_gpu_name(name: str) -> str:
    """``"NVIDIA GeForce RTX 4090"`` → ``"RTX 4090"``: the vendor prefix wastes table width."""
    for prefix in ("NVIDIA ", "GeForce "):
        name = name.removeprefix(prefix)
    return name


def uptime_seconds(pod: Pod) -> int:
    """Seconds since the container started (0 when it is not running)."""
    return pod.runtime.uptime_seconds if pod.runtime is not None else 0


def spend_estimate(pod: Pod) -> float:
    """Dollars spent since the last start: $/h × uptime.

    An estimate — uptime restarts with the container, and storage is billed
    separately — so label it as such wherever it is shown.
    """
    return pod.billing_per_hr * uptime_seconds(pod) / 3600.0


def money_warnings(account: Account, pods: Iterable[Pod]) -> list[str]:
    """What the account's money means for the pods, for people: a balance about to run out
    (RunPod then terminates the pods that keep data on their own volume) or a spend near the limit."""
    warnings = []
    balance, spend, limit = account.client_balance, account.current_spend_per_hr, account.spend_limit
    at_risk = sorted(p.name or p.id for p in pods if p.desired_status in ("RUNNING", "EXITED") and not p.network_volume)
    hours = account.hours_left
    when = None
    if balance is not None and balance <= 0:
        when = "is used up"
    elif balance is not None and hours is not None and hours < LOW_BALANCE_HOURS:
        when = f"lasts about {duration(hours * 3600)} at {money(spend, 3)}/h"
    if when is not None:
        warnings.append(f"Balance {money(balance)} {when}: add funds")
        if at_risk:
            warnings.append("At $0 RunPod terminates pods without a network volume, and their data with them: "
                            + ", ".join(at_risk))
    if spend is not None and limit and spend >= SPEND_LIMIT_SHARE * limit:
        warnings.append(f"Spending {money(spend, 3)}/h of the account's {money(limit, 0)}/h limit: "
                        "starting more pods may be refused")
    return warnings


def sort_pods(pods: Iterable[Pod], this_pod_id: str | None = None) -> list[Pod]:
    """This pod first, then running before stopped (they cost money), then by name."""
    return sorted(pods, key=lambda p: (p.id != this_pod_id, not p.is_running, p.name.lower(), p.id))


@dataclass(frozen=True)
class PodSummary:
    """One row of a pods table, for the CLI and the Pods screen alike."""

    id: str
    name: str
    gpu: str
    gpu_count: int
    status: str
    desired_status: str
    uptime_seconds: int
    #: What the pod bills per hour now: GPUs while running, its volume while stopped.
    cost_per_hr: float
    #: $/h × uptime; an estimate (see ``spend_estimate``).
    spend_estimate: float
    gpu_util_percent: float | None
    gpu_memory_percent: float | None
    is_this_pod: bool
    comfy_url: str
    ssh: str | None

    @property
    def uptime(self) -> str:
        return duration(self.uptime_seconds) if self.uptime_seconds else MISSING

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def comfy_server(row: PodSummary) -> ServerConfig:
    """The pod's ComfyUI as a server entry for the servers list."""
    return ServerConfig(name=f"{row.name or row.id} (RunPod)", url=row.comfy_url)


def summarize(pods: Iterable[Pod], this_pod_id: str | None = None) -> list[PodSummary]:
    """Rows for a pods table, sorted with ``sort_pods``."""
    rows = []
    for pod in sort_pods(pods, this_pod_id):
        runtime = pod.runtime
        rows.append(PodSummary(
            id=pod.id,
            name=pod.name,
            gpu=pod.gpu_display_name,
            gpu_count=pod.gpu_count,
            status=pod.status,
            desired_status=pod.desired_status,
            uptime_seconds=uptime_seconds(pod),
            cost_per_hr=pod.billing_per_hr,
            spend_estimate=spend_estimate(pod),
            gpu_util_percent=runtime.gpu_util_percent if runtime else None,
            gpu_memory_percent=runtime.gpu_memory_percent if runtime else None,
            is_this_pod=pod.id == this_pod_id,
            comfy_url=comfy_url(pod, this_pod_id),
            ssh=ssh_command(pod),
        ))
    return rows


async def probe_comfy(url: str, client: httpx.AsyncClient, timeout: float = 3.0) -> bool | str:
    """``True`` when ComfyUI answers ``GET /system_stats`` at ``url``, else why not.

    RunPod's proxy answers 502 while nothing listens on the port yet, which is
    the usual state for a minute or two after a pod starts.
    """
    try:
        response = await client.get(f"{url.rstrip('/')}/system_stats", timeout=timeout)
    except httpx.TimeoutException:
        return f"no answer within {timeout:g} s"
    except httpx.HTTPError as exc:
        return f"cannot connect ({type(exc).__name__})"
    if response.status_code in (502, 503, 504):
        return f"HTTP {response.status_code} from the proxy — ComfyUI is not listening yet"
    if response.status_code in (401, 403):
        return f"HTTP {response.status_code} — the server wants authentication"
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return "answered, but not with ComfyUI's JSON"
    if not isinstance(body, dict) or "system" not in body:
        return "answered, but not like ComfyUI"
    return True


def comfy_ports(pod: Pod) -> list[int]:
    """The pod's HTTP ports where ComfyUI may listen, 8188 first.

    Templates differ (8188 for most ComfyUI images, 3000 for some, others
    behind a launcher), so every HTTP port the pod exposes is a candidate:
    from its template's ``ports`` ("8188/http,22/tcp") and its live mappings.
    A pod that says nothing about its ports gets 8188.
    """
    ports = [int(spec.split("/")[0]) for spec in pod.exposed_ports
             if spec.endswith("/http") and spec.split("/")[0].isdigit()]
    if pod.runtime is not None:
        ports += [p.private_port for p in pod.runtime.ports if p.type == "http" and p.private_port]
    unique = list(dict.fromkeys(ports or [COMFY_PORT]))
    return sorted(unique, key=lambda port: port != COMFY_PORT)


@dataclass(frozen=True)
class ComfyFound:
    """Where a pod's ComfyUI answers (``url``), or why it was not found (``reason``)."""

    url: str | None
    reason: str = ""
    #: The pod bills but its ComfyUI is not (yet) up: image pulling, first boot, crash loop.
    not_up_yet: bool = False


async def find_comfy(pod: Pod, client: httpx.AsyncClient, this_pod_id: str | None = None,
                     timeout: float = 3.0) -> ComfyFound:
    """Probe the pod's candidate ports (``comfy_ports``) and say where ComfyUI answers."""
    if not pod.is_running:
        return ComfyFound(None, f"the pod is {pod.status}")
    if pod.runtime is None:
        return ComfyFound(None, "the pod is starting: its container is not up yet (image pull or first boot)",
                          not_up_yet=True)
    reasons = []
    for port in comfy_ports(pod):
        url = comfy_url(pod, this_pod_id, port)
        answer = await probe_comfy(url, client, timeout)
        if answer is True:
            return ComfyFound(url)
        reasons.append(f"port {port}: {answer}")
    return ComfyFound(None, "ComfyUI does not answer yet (" + "; ".join(reasons) + ") — see the pod's logs",
                      not_up_yet=True)


async def comfy_queue_length(url: str, client: httpx.AsyncClient, timeout: float = 3.0) -> int | None:
    """Prompts running or waiting on ComfyUI at ``url`` (``GET /prompt``), None if unknown."""
    try:
        response = await client.get(f"{url.rstrip('/')}/prompt", timeout=timeout)
        remaining = response.json()["exec_info"]["queue_remaining"] if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return remaining if isinstance(remaining, int) and not isinstance(remaining, bool) else None
