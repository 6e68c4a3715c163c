"""Money right: what a pod bills now, savings plans, a balance running out, the spend limit."""

from __future__ import annotations

import pytest

from pistachio_tui.runpod.models import Account, GpuUsage, Pod, PodRuntime
from pistachio_tui.runpod.pods import money_warnings, summarize
from pistachio_tui.sim.runpod import make_pod
from pistachio_tui.sim.runpod_rest import rest_pod


def test_a_stopped_pod_bills_its_volume_not_its_gpus():
    stopped = Pod.from_wire(make_pod("p1", "a", running=False, cost_per_hr=0.69, volume_gb=100))
    assert stopped.cost_per_hr == 0.69, "RunPod's own figure is the rate it would resume at"
    assert stopped.billing_per_hr == pytest.approx(100 * 0.20 / 730)
    assert summarize([stopped])[0].cost_per_hr == pytest.approx(0.0274, abs=1e-4)
    from_rest = Pod.from_rest(rest_pod(make_pod("p1", "a", running=False, volume_gb=100)))
    assert from_rest.billing_per_hr == stopped.billing_per_hr


def test_a_savings_plan_pod_bills_the_adjusted_rate():
    wire = make_pod("p1", "a", cost_per_hr=2.99)
    wire["adjustedCostPerHr"] = 1.79
    assert Pod.from_wire(wire).billing_per_hr == 1.79
    assert Pod.from_wire(make_pod("p2", "b", cost_per_hr=2.99)).billing_per_hr == 2.99


def test_the_busiest_gpu_is_the_pods_utilisation():
    runtime = PodRuntime(60, gpus=[GpuUsage(str(i), 0.0, 1.0) for i in range(7)] + [GpuUsage("7", 90.0, 50.0)])
    assert runtime.gpu_util_percent == 90.0


def test_no_warning_for_a_healthy_account():
    assert money_warnings(Account(500.0, 1.0, 80.0), [Pod.from_wire(make_pod("p1", "a"))]) == []


def test_a_balance_running_out_names_the_pods_that_would_be_terminated():
    pods = [Pod.from_wire(make_pod("p1", "comfy")), Pod.from_wire(make_pod("p2", "old", running=False))]
    safe = rest_pod(make_pod("p3", "on-network"))
    safe["mounts"] = {"network": [{"volumeId": "v1", "path": "/workspace"}]}
    pods.append(Pod.from_rest(safe))
    warnings = money_warnings(Account(3.0, 1.5, None), pods)
    assert warnings[0] == "Balance $3.00 lasts about 2h 00m at $1.500/h: add funds"
    assert "terminates pods without a network volume" in warnings[1]
    assert warnings[1].endswith("comfy, old")


def test_an_empty_balance_and_a_spend_near_the_limit():
    warnings = money_warnings(Account(0.0, 9.0, 10.0), [])
    assert warnings == ["Balance $0.00 is used up: add funds",
                        "Spending $9.000/h of the account's $10/h limit: starting more pods may be refused"]
