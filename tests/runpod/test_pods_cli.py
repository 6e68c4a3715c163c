"""``pistachio pods …`` against the fake RunPod API."""

from __future__ import annotations

import argparse
import json
import os
import socket

import pytest

from pistachio_tui.cli import exit_codes, pods_commands
from pistachio_tui.sim.runpod import make_pod

SECRET = "rpa_SECRET123"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pistachio")
    pods_commands.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["pods", *argv])


async def run(*argv: str) -> int:
    args = parse(*argv)
    return await args.func(args)


async def test_table_lists_pods_with_cost_and_account(runpod_env, capsys):
    assert await run() == exit_codes.OK
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ID", "GPU", "STATUS", "UPTIME", "$/H", "SPEND≈", "GPU%"]
    assert "comfy-4090" in lines[1] and "1× RTX 4090" in lines[1] and "2h 03m" in lines[1]
    assert "$0.690" in lines[1] and "$1.41" in lines[1] and "87%" in lines[1]
    assert "trainer-h100" in lines[2]
    assert "old-a40" in lines[3] and "stopped" in lines[3] and "—" in lines[3]
    assert "Account: $3.680/h now · balance $25.00 (≈ 6h 47m left)" in out
    assert "estimate" in err
    assert "this pod" not in out


async def test_this_pod_is_first_and_marked(runpod_env, capsys, monkeypatch):
    monkeypatch.setenv("RUNPOD_POD_ID", "def456uvw")
    assert await run("list") == exit_codes.OK
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("*") and "trainer-h100" in out[1]
    assert "* = this pod (Pistachio runs on it)" in out


async def test_json_listing(runpod_env, capsys, monkeypatch):
    monkeypatch.setenv("RUNPOD_POD_ID", "abc123xyz")
    assert await run("--json") == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert data["this_pod"] == "abc123xyz"
    assert data["account"]["current_spend_per_hr"] == pytest.approx(3.68)
    first = data["pods"][0]
    assert first["id"] == "abc123xyz" and first["is_this_pod"] and first["comfy_url"] == "http://127.0.0.1:8188"
    assert first["spend_estimate"] == pytest.approx(0.69 * 7380 / 3600)
    assert first["ssh"] == "ssh root@203.0.113.7 -p 40022 -i ~/.ssh/id_ed25519"
    assert {p["status"] for p in data["pods"]} == {"running", "stopped"}


async def test_empty_account(runpod_env, capsys):
    runpod_env.pods.clear()
    assert await run() == exit_codes.OK
    assert "No pods in this RunPod account." in capsys.readouterr().out


async def test_stop_and_start(runpod_env, capsys):
    assert await run("stop", "abc123xyz") == exit_codes.OK
    assert runpod_env.pod("abc123xyz")["desiredStatus"] == "EXITED"
    assert "comfy-4090 (abc123xyz): exited" in capsys.readouterr().out
    assert await run("stop", "abc123xyz") == exit_codes.OK
    assert "already stopped" in capsys.readouterr().out
    assert await run("start", "abc123xyz") == exit_codes.OK
    assert runpod_env.pod("abc123xyz")["desiredStatus"] == "RUNNING"
    assert runpod_env.requests[-1]["variables"] == {"action": "start"}
    assert await run("start", "abc123xyz") == exit_codes.OK
    assert "already running" in capsys.readouterr().out


async def test_start_with_more_gpus(runpod_env):
    assert await run("start", "ghi789rst", "--gpus", "4") == exit_codes.OK
    assert runpod_env.pod("ghi789rst")["gpuCount"] == 4


async def test_unknown_pod_is_rejected(runpod_env, capsys):
    assert await run("stop", "nope") == exit_codes.REJECTED
    assert "No pod with id 'nope'" in capsys.readouterr().err


async def test_terminate_refuses_without_the_exact_name(runpod_env, capsys):
    assert await run("terminate", "ghi789rst", "--confirm", "old-A40") == exit_codes.USAGE
    assert runpod_env.pod("ghi789rst") is not None
    assert "podTerminate" not in runpod_env.operations()
    assert "the confirmation must be the pod's name exactly ('old-a40')" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("terminate", "ghi789rst")


async def test_terminate_with_the_name(runpod_env, capsys):
    assert await run("terminate", "ghi789rst", "--confirm", "old-a40") == exit_codes.OK
    assert runpod_env.pod("ghi789rst") is None
    assert "old-a40 (ghi789rst): terminated" in capsys.readouterr().out


async def test_gpu_price_table_and_json(runpod_env, capsys):
    assert await run("gpus") == exit_codes.OK
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["GPU", "VRAM"]
    assert out[1].startswith("A40") and "$0.390" in out[1] and "secure" in out[1]
    assert "RTX 4090" in out[2] and "$0.350" in out[2] and "secure+community" in out[2]
    assert "unavailable" in out[4]
    assert await run("gpus", "--json") == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert data[1] == {"id": "NVIDIA GeForce RTX 4090", "display_name": "RTX 4090", "memory_in_gb": 24,
                       "on_demand_per_hr": 0.69, "spot_per_hr": 0.35, "secure_cloud": True,
                       "community_cloud": True}


async def test_unset_key_says_how_to_set_it(capsys, _isolated_config):
    assert await run() == exit_codes.USAGE
    err = capsys.readouterr().err
    assert "RUNPOD_API_KEY" in err and "https://www.runpod.io/console/user/settings" in err
    assert str(_isolated_config / "secrets.toml") in err


async def test_key_from_the_secrets_file(fake_runpod, monkeypatch, _isolated_config, capsys):
    monkeypatch.setenv("RUNPOD_API_URL", fake_runpod.url)
    secrets = _isolated_config / "secrets.toml"
    secrets.write_text(f'RUNPOD_API_KEY = "{fake_runpod.api_key}"\n')
    os.chmod(secrets, 0o644)
    assert await run() == exit_codes.USAGE
    assert "chmod 600" in capsys.readouterr().err
    os.chmod(secrets, 0o600)
    assert await run() == exit_codes.OK


async def test_rejected_key_is_a_usage_error_and_never_printed(fake_runpod, monkeypatch, capsys):
    monkeypatch.setenv("RUNPOD_API_URL", fake_runpod.url)
    monkeypatch.setenv("RUNPOD_API_KEY", SECRET)
    assert await run() == exit_codes.USAGE
    out, err = capsys.readouterr()
    assert "RunPod rejected the API key" in err
    assert "SECRET123" not in out + err


async def test_unreachable_api(monkeypatch, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("RUNPOD_API_URL", f"http://127.0.0.1:{port}/graphql")
    monkeypatch.setenv("RUNPOD_API_KEY", SECRET)
    assert await run() == exit_codes.UNREACHABLE
    err = capsys.readouterr().err
    assert "Cannot reach the RunPod API" in err and "SECRET123" not in err


async def test_rate_limited_and_refused(runpod_env, capsys):
    runpod_env.rate_limited = 12
    assert await run("gpus") == exit_codes.UNREACHABLE
    assert "retry in 12 s" in capsys.readouterr().err
    runpod_env.rate_limited = False
    runpod_env.graphql_errors = ["Internal thing"]
    assert await run() == exit_codes.REJECTED


def test_registered_with_the_main_entry_point(capsys):
    from pistachio_tui.cli import main

    assert main(["pods"]) == exit_codes.USAGE
    assert "RUNPOD_API_KEY" in capsys.readouterr().err


@pytest.fixture
def comfy_queues(monkeypatch):
    """The ComfyUI queue of each pod as the guard reads it, without reaching RunPod's proxy."""
    queues: dict[str, int | None] = {}

    async def queue_length(url, client, timeout=3.0):
        return queues.get(url.removeprefix("https://").split("-")[0])

    monkeypatch.setattr("pistachio_tui.runpod.monitor.comfy_queue_length", queue_length)
    return queues


async def test_guard_stops_the_idle_pod_and_only_it(runpod_env, comfy_queues, capsys):
    assert await run("guard", "--idle-minutes", "0", "--countdown", "0", "--once", "--json") == exit_codes.OK
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e["pod"]) for e in events] == [
        ("start", None), ("flagged", "def456uvw"), ("countdown", "def456uvw"), ("stopped", "def456uvw")]
    assert runpod_env.pod("def456uvw")["desiredStatus"] == "EXITED"
    assert runpod_env.pod("abc123xyz")["desiredStatus"] == "RUNNING", "the busy pod is left alone"
    assert "podTerminate" not in runpod_env.operations()


async def test_guard_watches_only_the_pods_it_is_given(runpod_env, comfy_queues, capsys):
    assert await run("guard", "--pod", "abc123xyz", "--idle-minutes", "0", "--countdown", "0", "--once") == 0
    assert runpod_env.pod("def456uvw")["desiredStatus"] == "RUNNING"
    assert "stopped" not in capsys.readouterr().out


async def test_guard_on_the_pod_itself(runpod_env, comfy_queues, monkeypatch, capsys):
    monkeypatch.delenv("RUNPOD_POD_ID", raising=False)
    assert await run("guard", "--self", "--once") == exit_codes.USAGE
    assert "RUNPOD_POD_ID" in capsys.readouterr().err
    monkeypatch.setenv("RUNPOD_POD_ID", "def456uvw")
    assert await run("guard", "--self", "--idle-minutes", "0", "--countdown", "0", "--once") == exit_codes.OK
    assert runpod_env.pod("def456uvw")["desiredStatus"] == "EXITED"


async def test_guard_leaves_a_pod_with_a_busy_cpu(runpod_env, comfy_queues, capsys):
    runpod_env.pods[1]["runtime"]["container"]["cpuPercent"] = 60  # e.g. a model download
    assert await run("guard", "--idle-minutes", "0", "--countdown", "0", "--once") == exit_codes.OK
    assert runpod_env.pod("def456uvw")["desiredStatus"] == "RUNNING"


async def test_guard_leaves_a_pod_with_prompts_in_its_comfyui_queue(runpod_env, comfy_queues, capsys):
    comfy_queues["def456uvw"] = 2
    assert await run("guard", "--idle-minutes", "0", "--countdown", "0", "--once") == exit_codes.OK
    assert runpod_env.pod("def456uvw")["desiredStatus"] == "RUNNING"


async def test_start_a_spot_pod_with_a_bid(runpod_env, capsys):
    runpod_env.pods.append(make_pod("spot1", "cheap", running=False, pod_type="INTERRUPTABLE", bid=0.2))
    assert await run("start", "spot1", "--bid", "0.25") == exit_codes.OK
    bid = [r for r in runpod_env.requests if r["root"] == "podBidResume"][-1]
    assert bid["variables"]["input"]["bidPerGpu"] == 0.25


async def test_pods_comfy_says_why_it_is_not_up(runpod_env, monkeypatch, capsys):
    async def probe(url, client, timeout=3.0):
        return "HTTP 502 from the proxy — ComfyUI is not listening yet"

    monkeypatch.setattr("pistachio_tui.runpod.pods.probe_comfy", probe)
    runpod_env.pods[0]["ports"] = "8188/http,3000/http,22/tcp"
    assert await run("comfy", "abc123xyz") == exit_codes.UNREACHABLE
    out, err = capsys.readouterr()
    assert "port(s) 8188, 3000" in err
    assert "port 8188: HTTP 502" in out and "port 3000: HTTP 502" in out and "logs" in out


async def test_create_from_a_template_shows_price_and_stock_first(runpod_env, capsys):
    code = await run("create", "--template", "tpl_comfy", "--gpu", "RTX 4090", "--gpus", "2", "--name", "mine",
                     "--yes")
    assert code == exit_codes.OK
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "2× RTX 4090 (24 GB): $1.380/h (SECURE cloud), stock HIGH; template tpl_comfy"
    assert "mine (new004): starting" in out
    body = [r for r in runpod_env.requests if r["root"] == "podCreate"][-1]["variables"]
    assert body["image"] == "runpod/comfyui:latest" and body["ports"] == ["8188/http", "22/tcp"]
    assert body["gpu"] == {"id": "NVIDIA GeForce RTX 4090", "count": 2}
    assert body["mounts"] == {"persistent": {"size": 50, "path": "/workspace"}}


async def test_create_with_a_network_volume_and_no_stock(runpod_env, capsys):
    assert await run("create", "--template", "tpl_comfy", "--gpu", "NVIDIA A40", "--volume", "vol_1", "--yes") == 0
    body = [r for r in runpod_env.requests if r["root"] == "podCreate"][-1]["variables"]
    assert body["mounts"] == {"network": [{"volumeId": "vol_1", "path": "/workspace"}]}
    runpod_env.stock["NVIDIA A40"] = "NONE"
    assert await run("create", "--template", "tpl_comfy", "--gpu", "NVIDIA A40", "--yes") == exit_codes.REJECTED
    assert "none in stock" in capsys.readouterr().err


async def test_create_asks_first_and_refuses_spot(runpod_env, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert await run("create", "--template", "tpl_comfy", "--gpu", "RTX 4090") == exit_codes.USAGE
    assert await run("create", "--template", "tpl_comfy", "--gpu", "RTX 4090", "--spot") == exit_codes.USAGE
    assert not [r for r in runpod_env.requests if r["root"] == "podCreate"]
    assert await run("create", "--template", "nope", "--gpu", "RTX 4090", "--yes") == exit_codes.FAILED
    assert "No template 'nope'" in capsys.readouterr().err


async def test_create_waits_for_comfyui_and_adds_it_as_a_server(runpod_env, monkeypatch, capsys):
    from pistachio_tui.config import load_settings
    from pistachio_tui.runpod.pods import ComfyFound

    answers = [ComfyFound(None, "the pod is starting", not_up_yet=True)]

    async def find(pod, client, this_pod_id=None, timeout=3.0):
        return answers.pop(0) if answers else ComfyFound(f"https://{pod.id}-8188.proxy.runpod.net")

    async def no_wait(seconds):
        return None

    monkeypatch.setattr("pistachio_tui.runpod.pods.find_comfy", find)
    monkeypatch.setattr("asyncio.sleep", no_wait)
    assert await run("create", "--template", "tpl_comfy", "--gpu", "RTX 4090", "--yes", "--add-server") == 0
    assert [s.url for s in load_settings().servers] == ["https://new004-8188.proxy.runpod.net"]
    assert "waiting: the pod is starting" in capsys.readouterr().err


async def test_pods_logs_reads_the_backfill_of_the_live_stream(runpod_env, capsys):
    runpod_env.logs["abc123xyz"] = [("system", "pulling image runpod/comfyui:latest"),
                                    ("container", "Starting server"), ("container", "To see the GUI go to: x")]
    assert await run("logs", "abc123xyz", "--tail", "2") == exit_codes.OK
    out = capsys.readouterr().out.splitlines()
    assert out == ["2026-06-01T12:02:00Z container Starting server",
                   "2026-06-01T12:02:01Z container To see the GUI go to: x"]
    assert await run("logs", "nope") == exit_codes.REJECTED


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("rest", [True, False], ids=["rest", "graphql"])
@pytest.mark.parametrize(("argv", "spoil"), [
    (["list"], lambda fake: fake.pods.append(make_pod("p9", "nan", cost_per_hr=NAN))),
    (["list"], lambda fake: fake.pods.append(make_pod("p9", "inf", uptime=INF))),
    (["--json", "list"], lambda fake: fake.pods.append(make_pod("p9", "gpu", gpu_util=NAN))),
    (["list"], lambda fake: setattr(fake, "balance", -1e300)),
    (["gpus"], lambda fake: fake.gpu_types[0].update(memoryInGb=INF)),
    (["guard", "--once"], lambda fake: fake.pods.append(make_pod("p9", "inf", uptime=INF))),
], ids=["cost-nan", "uptime-inf", "util-nan-json", "balance-1e300", "gpu-memory-inf", "guard"])
async def test_non_finite_runpod_fields_are_a_message_not_a_traceback(runpod_env, argv, spoil, rest, capsys):
    """RunPod fields holding NaN or Infinity (Python's json reads both) ended in OverflowError
    (exit 70) or printed "$nan/h"; now the answer is refused, naming the field."""
    runpod_env.rest_available = rest
    spoil(runpod_env)
    code = await run(*argv)
    out, err = capsys.readouterr()
    assert code == exit_codes.FAILED, err
    assert "which is not a usable number" in err and "Traceback" not in err
    assert "nan" not in out.lower() and "inf" not in out.lower().replace("info", "")
