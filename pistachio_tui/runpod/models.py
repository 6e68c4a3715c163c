"""Typed views of what RunPod's APIs return, whichever answered.

GraphQL wire dicts become these dataclasses in ``from_wire``, REST v2 ones in
``from_rest``; nothing past this module looks at RunPod's JSON or knows which
API it came from. RunPod leaves many fields ``null`` (a stopped pod has no
runtime, a GPU without a sample has no utilisation), so optional data stays
``None`` rather than being invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pistachio_tui.runpod.errors import BadResponse


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadResponse(f"RunPod sent {what} that is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadResponse(f"RunPod sent {what} that is not a list")
    return value


#: No price, balance, size or uptime RunPod reports comes near this; a larger figure is a broken answer.
_MAX_FIGURE = 1e15


def _num(raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadResponse(f"RunPod sent a non-numeric {key!r}")
    # NaN, Infinity (Python's json reads both) or 1e300 would print as "$nan/h" or
    # 300 digits, and end in OverflowError wherever a count is made of them.
    if not abs(value) <= _MAX_FIGURE:
        raise BadResponse(f"RunPod sent {key!r} = {value!r}, which is not a usable number")
    return float(value)


def _int(raw: dict[str, Any], key: str, default: int = 0) -> int:
    value = _num(raw, key)
    return default if value is None else int(value)


def _str(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    return "" if value is None else str(value)


#: RunPod's price of a stopped pod's volume disk, in $ per GB per month (a running pod's is half that).
STOPPED_VOLUME_PER_GB_MONTH = 0.20
#: RunPod bills storage monthly; this is its hours per month.
HOURS_PER_MONTH = 730.0


@dataclass(frozen=True)
class PortMapping:
    """One exposed port: ``type`` is "tcp" (direct IP) or "http" (RunPod proxy)."""

    ip: str
    is_ip_public: bool
    private_port: int
    public_port: int
    type: str

    @classmethod
    def from_wire(cls, raw: Any) -> PortMapping:
        raw = _obj(raw, "a port mapping")
        return cls(
            ip=_str(raw, "ip"),
            is_ip_public=bool(raw.get("isIpPublic")),
            private_port=_int(raw, "privatePort"),
            public_port=_int(raw, "publicPort"),
            type=_str(raw, "type").lower(),
        )


    @classmethod
    def from_rest(cls, raw: Any) -> PortMapping:
        """``{"private", "public", "type", "ip"}`` of a v2 ``PodRuntimePort``."""
        raw = _obj(raw, "a port mapping")
        ip = _str(raw, "ip")
        kind = _str(raw, "type").lower()
        return cls(ip=ip, is_ip_public=bool(ip) and kind == "tcp", private_port=_int(raw, "private"),
                   public_port=_int(raw, "public"), type=kind)


@dataclass(frozen=True)
class GpuUsage:
    """Utilisation of one GPU of a running pod, in percent."""

    id: str
    gpu_util_percent: float | None
    memory_util_percent: float | None

    @classmethod
    def from_wire(cls, raw: Any) -> GpuUsage:
        raw = _obj(raw, "a GPU sample")
        return cls(_str(raw, "id"), _num(raw, "gpuUtilPercent"), _num(raw, "memoryUtilPercent"))


@dataclass(frozen=True)
class ContainerUsage:
    """CPU and RAM use of a running pod's container, in percent."""

    cpu_percent: float | None
    memory_percent: float | None


@dataclass(frozen=True)
class PodRuntime:
    """What RunPod reports for a pod whose container is up."""

    uptime_seconds: int
    ports: list[PortMapping] = field(default_factory=list)
    gpus: list[GpuUsage] = field(default_factory=list)
    container: ContainerUsage | None = None

    @property
    def gpu_util_percent(self) -> float | None:
        """Utilisation of the pod's busiest GPU, None when RunPod has no sample.

        The busiest, not the mean: one GPU of eight at 90% is a working pod,
        which a mean (11%) would make look idle.
        """
        values = [g.gpu_util_percent for g in self.gpus if g.gpu_util_percent is not None]
        return max(values) if values else None

    @property
    def gpu_memory_percent(self) -> float | None:
        """Mean VRAM use over the pod's GPUs, None when RunPod has no sample."""
        values = [g.memory_util_percent for g in self.gpus if g.memory_util_percent is not None]
        return sum(values) / len(values) if values else None

    @classmethod
    def from_wire(cls, raw: Any) -> PodRuntime:
        raw = _obj(raw, "a pod runtime")
        container = raw.get("container")
        if container is not None:
            container = _obj(container, "a container sample")
            container = ContainerUsage(_num(container, "cpuPercent"), _num(container, "memoryPercent"))
        return cls(
            uptime_seconds=_int(raw, "uptimeInSeconds"),
            ports=[PortMapping.from_wire(p) for p in _list(raw.get("ports"), "ports")],
            gpus=[GpuUsage.from_wire(g) for g in _list(raw.get("gpus"), "GPU samples")],
            container=container,
        )

    @classmethod
    def from_rest(cls, raw: Any) -> PodRuntime:
        """A v2 ``PodRuntime``: ``uptime``, ``gpus[{util, memoryUtil}]``, ``cpu``/``memory`` ``{util}``, ``ports``."""
        raw = _obj(raw, "a pod runtime")
        cpu, memory = raw.get("cpu"), raw.get("memory")
        container = None
        if cpu is not None or memory is not None:
            container = ContainerUsage(_num(_obj(cpu or {}, "a CPU sample"), "util"),
                                       _num(_obj(memory or {}, "a memory sample"), "util"))
        gpus = [_obj(g, "a GPU sample") for g in _list(raw.get("gpus"), "GPU samples")]
        return cls(
            uptime_seconds=_int(raw, "uptime"),
            ports=[PortMapping.from_rest(p) for p in _list(raw.get("ports"), "ports")],
            gpus=[GpuUsage(str(i), _num(g, "util"), _num(g, "memoryUtil")) for i, g in enumerate(gpus)],
            container=container,
        )


@dataclass(frozen=True)
class Pod:
    """A pod of the account. ``desired_status`` is RunPod's: RUNNING, EXITED, TERMINATED…"""

    id: str
    name: str
    desired_status: str
    image_name: str = ""
    cost_per_hr: float = 0.0
    gpu_count: int = 0
    pod_type: str = ""
    gpu_display_name: str = ""
    pod_host_id: str = ""
    runtime: PodRuntime | None = None
    #: Ports the pod exposes, as its template says: ``"8188/http"``, ``"22/tcp"``.
    exposed_ports: tuple[str, ...] = ()
    #: The pod's own volume (``/workspace``) in GB; it bills while the pod is stopped too.
    volume_in_gb: float = 0.0
    #: $/h after a savings plan (GraphQL ``adjustedCostPerHr``), None when RunPod did not say.
    adjusted_cost_per_hr: float | None = None
    #: True when the pod's data lives on a network volume (it survives a $0 balance).
    network_volume: bool = False

    @property
    def billing_per_hr(self) -> float:
        """What the pod costs per hour as it is now.

        Running: its GPU rate (the savings-plan rate when it has one). Stopped:
        only its volume, at RunPod's rate for a stopped pod's volume. RunPod's
        own ``costPerHr`` for a stopped pod is the GPU rate it would resume at.
        """
        if self.is_running:
            return self.adjusted_cost_per_hr if self.adjusted_cost_per_hr else self.cost_per_hr
        if self.desired_status == "TERMINATED":
            return 0.0
        return self.volume_in_gb * STOPPED_VOLUME_PER_GB_MONTH / HOURS_PER_MONTH

    @property
    def is_running(self) -> bool:
        """Billing as a running pod (RunPod charges from the resume until the stop)."""
        return self.desired_status == "RUNNING"

    @property
    def status(self) -> str:
        """A short lower-case state for people: running, starting, stopped, terminated…"""
        if self.desired_status == "RUNNING":
            return "running" if self.runtime is not None else "starting"
        if self.desired_status == "EXITED":
            return "stopped"
        return self.desired_status.lower() or "unknown"

    @classmethod
    def from_wire(cls, raw: Any) -> Pod:
        raw = _obj(raw, "a pod")
        if not raw.get("id"):
            raise BadResponse("RunPod sent a pod without an id")
        machine = raw.get("machine")
        machine = _obj(machine, "a pod machine") if machine is not None else {}
        runtime = raw.get("runtime")
        return cls(
            id=_str(raw, "id"),
            name=_str(raw, "name"),
            desired_status=_str(raw, "desiredStatus").upper(),
            image_name=_str(raw, "imageName"),
            cost_per_hr=_num(raw, "costPerHr") or 0.0,
            gpu_count=_int(raw, "gpuCount"),
            pod_type=_str(raw, "podType"),
            gpu_display_name=_str(machine, "gpuDisplayName"),
            pod_host_id=_str(machine, "podHostId"),
            runtime=PodRuntime.from_wire(runtime) if runtime is not None else None,
            exposed_ports=tuple(p.strip() for p in _str(raw, "ports").split(",") if p.strip()),
            volume_in_gb=_num(raw, "volumeInGb") or 0.0,
            adjusted_cost_per_hr=_num(raw, "adjustedCostPerHr"),
        )

    @classmethod
    def from_rest(cls, raw: Any) -> Pod:
        """A v2 ``Pod``. Its ``status`` maps onto GraphQL's ``desiredStatus``: a pod being
        provisioned or started is RUNNING (it bills) without a runtime yet, as GraphQL shows it."""
        raw = _obj(raw, "a pod")
        if not raw.get("id"):
            raise BadResponse("RunPod sent a pod without an id")
        status = _str(raw, "status").upper()
        gpu = raw.get("gpu")
        gpu = _obj(gpu, "a pod GPU") if gpu is not None else {}
        mounts = _obj(raw.get("mounts") or {}, "pod mounts")
        persistent = mounts.get("persistent")
        runtime = raw.get("runtime")
        running = status == "RUNNING" and runtime is not None
        return cls(
            id=_str(raw, "id"),
            name=_str(raw, "name"),
            desired_status="RUNNING" if status in ("PROVISIONING", "STARTING") else status,
            image_name=_str(raw, "image"),
            cost_per_hr=_num(raw, "cost") or 0.0,
            gpu_count=_int(gpu, "count"),
            gpu_display_name=_str(gpu, "id"),
            runtime=PodRuntime.from_rest(runtime) if running else None,
            exposed_ports=tuple(str(p) for p in _list(raw.get("ports"), "ports")),
            volume_in_gb=_num(_obj(persistent, "a volume"), "size") or 0.0 if persistent is not None else 0.0,
            network_volume=bool(mounts.get("network")),
        )


@dataclass(frozen=True)
class LowestPrice:
    """Cheapest $/h for one GPU of a type: on-demand and spot (bid)."""

    uninterruptable: float | None
    minimum_bid: float | None


@dataclass(frozen=True)
class GpuType:
    """A GPU model RunPod rents, with its prices in $/h per GPU."""

    id: str
    display_name: str
    memory_in_gb: int
    secure_cloud: bool
    community_cloud: bool
    secure_price: float | None = None
    community_price: float | None = None
    secure_spot_price: float | None = None
    community_spot_price: float | None = None
    lowest: LowestPrice = LowestPrice(None, None)
    #: Stock as REST's catalog says when asked: NONE, LOW, MEDIUM, HIGH (None: not asked or not known).
    availability: str | None = None

    @property
    def on_demand_price(self) -> float | None:
        """The cheapest on-demand $/h, whichever cloud offers it."""
        if self.lowest.uninterruptable:
            return self.lowest.uninterruptable
        prices = [p for p in (self.secure_price, self.community_price) if p]
        return min(prices) if prices else None

    @property
    def spot_price(self) -> float | None:
        """The cheapest spot (interruptible) $/h, if any."""
        if self.lowest.minimum_bid:
            return self.lowest.minimum_bid
        prices = [p for p in (self.secure_spot_price, self.community_spot_price) if p]
        return min(prices) if prices else None

    @classmethod
    def from_wire(cls, raw: Any) -> GpuType:
        raw = _obj(raw, "a GPU type")
        lowest = raw.get("lowestPrice")
        lowest = _obj(lowest, "a lowest price") if lowest is not None else {}
        return cls(
            id=_str(raw, "id"),
            display_name=_str(raw, "displayName") or _str(raw, "id"),
            memory_in_gb=_int(raw, "memoryInGb"),
            secure_cloud=bool(raw.get("secureCloud")),
            community_cloud=bool(raw.get("communityCloud")),
            secure_price=_num(raw, "securePrice"),
            community_price=_num(raw, "communityPrice"),
            secure_spot_price=_num(raw, "secureSpotPrice"),
            community_spot_price=_num(raw, "communitySpotPrice"),
            lowest=LowestPrice(_num(lowest, "uninterruptablePrice"), _num(lowest, "minimumBidPrice")),
        )

    @classmethod
    def from_rest(cls, raw: Any) -> GpuType:
        """A v2 catalog ``GpuType``: ``{id, name, memory, secure, community, price{secure, community}}``.
        The catalog has no spot prices: those stay None."""
        raw = _obj(raw, "a GPU type")
        price = raw.get("price")
        price = _obj(price, "a GPU price") if price is not None else {}
        secure, community = bool(raw.get("secure")), bool(raw.get("community"))
        return cls(
            id=_str(raw, "id"),
            display_name=_str(raw, "name") or _str(raw, "id"),
            memory_in_gb=_int(raw, "memory"),
            secure_cloud=secure,
            community_cloud=community,
            secure_price=_num(price, "secure") if secure else None,
            community_price=_num(price, "community") if community else None,
            availability=_str(raw, "availability") or None,
        )


@dataclass(frozen=True)
class Account:
    """Money: balance in $, what all running resources cost now in $/h, the spend limit."""

    client_balance: float | None
    current_spend_per_hr: float | None
    spend_limit: float | None = None

    @property
    def hours_left(self) -> float | None:
        """How long the balance lasts at the current spend rate."""
        if self.client_balance is None or not self.current_spend_per_hr:
            return None
        return max(self.client_balance, 0.0) / self.current_spend_per_hr

    @classmethod
    def from_wire(cls, raw: Any) -> Account:
        raw = _obj(raw, "the account")
        return cls(_num(raw, "clientBalance"), _num(raw, "currentSpendPerHr"), _num(raw, "spendLimit"))


@dataclass(frozen=True)
class Overview:
    """Account and pods fetched together, as a pods screen refresh needs them."""

    account: Account
    pods: list[Pod]


@dataclass(frozen=True)
class LogLine:
    """One line of a pod's log: ``source`` is "container" or "system"."""

    ts: str
    source: str
    line: str

    @classmethod
    def from_rest(cls, raw: Any) -> LogLine:
        raw = _obj(raw, "a log event")
        return cls(_str(raw, "ts"), _str(raw, "source"), _str(raw, "line"))
