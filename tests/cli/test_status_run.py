"""``pistachio status`` and ``pistachio run`` against recorded runs replayed by a loopback server."""

from __future__ import annotations

import asyncio
import io
import json
import socket

import pytest
from aiohttp import web

from pistachio_tui.cli import build_parser, exit_codes
from pistachio_tui.cli.comfy_commands import (
    ProgressLine,
    load_run_file,
    resolve_server,
)
from pistachio_tui.comfy.tracker import PromptState
from pistachio_tui.config import ServerConfig, Settings, save_settings
from pistachio_tui.workflow.errors import WorkflowError
from tests.cli.trace_server import TraceServer
from tests.conftest import load_fixture


@pytest.fixture
async def trace_server():
    servers = []

    async def start(scenario: str) -> TraceServer:
        server = TraceServer(scenario)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def recorded_prompt(name: str) -> dict:
    [entry] = load_fixture(f"{name}.history").values()
    return entry["prompt"][2]


def prompt_file(tmp_path, prompt: dict, name: str = "prompt.json"):
    path = tmp_path / name
    path.write_text(json.dumps(prompt))
    return path


async def cli(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return await args.func(args)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# -- status --------------------------------------------------------------------

async def test_status_table(trace_server, capsys):
    server = await trace_server("success")
    assert await cli("status", "--server", server.url) == exit_codes.OK
    out = capsys.readouterr().out
    assert "ComfyUI 0.8.0" in out and server.url in out
    assert "torch 2.14.1+cu130" in out
    assert "cpu" in out and "22.0G" in out
    assert "RAM free" in out and "VRAM" not in out, "a CPU server's memory is RAM"
    assert "Queue: 0 running, 0 pending" in out


async def test_status_json(trace_server, capsys):
    server = await trace_server("success")
    assert await cli("status", "--server", server.url, "--json") == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert data["comfyui_version"] == "0.8.0"
    assert data["devices"][0]["vram_total"] == 25276063744
    assert data["queue"] == {"running": 0, "pending": 0, "running_ids": [], "pending_ids": []}


async def test_status_unreachable(capsys):
    url = closed_port_url()
    assert await cli("status", "--server", url, "--json") == exit_codes.UNREACHABLE
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "unreachable"
    assert f"Cannot reach ComfyUI at {url}" in captured.err


async def test_server_defaults_to_the_first_configured_one(tmp_path):
    args = build_parser().parse_args(["status"])
    assert resolve_server(args) == ("http://127.0.0.1:8188", {})
    save_settings(Settings(servers=[ServerConfig("pod", "https://abc-8188.proxy.example", {"Authorization": "x"}),
                                    ServerConfig("lan", "http://10.0.0.2:8188")]))
    assert resolve_server(args) == ("https://abc-8188.proxy.example", {"Authorization": "x"})
    by_name = build_parser().parse_args(["status", "--server", "lan"])
    assert resolve_server(by_name) == ("http://10.0.0.2:8188", {})
    bare = build_parser().parse_args(["status", "--server", "box:8188"])
    assert resolve_server(bare) == ("http://box:8188", {})


# -- run -----------------------------------------------------------------------

async def test_run_success_json(trace_server, tmp_path, capsys):
    server = await trace_server("success")
    path = prompt_file(tmp_path, recorded_prompt("success"))
    assert await cli("run", str(path), "--server", server.url, "--json") == exit_codes.OK
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["status"] == "success"
    # The id the run chose and sent, which ComfyUI takes as the prompt's.
    assert data["prompt_id"] == server.submitted[0]["prompt_id"]
    assert data["duration_s"] == pytest.approx(1.008)
    assert [o["filename"] for o in data["outputs"]] == ["probe_00002_.png"]
    assert data["error"] is None
    assert server.submitted[0]["prompt"] == recorded_prompt("success")
    # Not a terminal: plain progress lines, at least the first one and the node changes.
    assert "Slow Steps" in captured.err


async def test_run_success_human(trace_server, tmp_path, capsys):
    server = await trace_server("cached")
    path = prompt_file(tmp_path, {"prompt": recorded_prompt("cached")})
    assert await cli("run", str(path), "--server", server.url) == exit_codes.OK
    out = capsys.readouterr().out
    assert out.startswith(f"success: prompt {server.submitted[0]['prompt_id']}")
    assert "node 3 images: output/probe_00002_.png" in out


async def test_run_execution_error(trace_server, tmp_path, capsys):
    server = await trace_server("exec_error")
    path = prompt_file(tmp_path, recorded_prompt("exec_error"))
    assert await cli("run", str(path), "--server", server.url) == exit_codes.FAILED
    out = capsys.readouterr().out
    assert f"error: prompt {server.submitted[0]['prompt_id']}" in out
    assert "node 4 (Boom) raised RuntimeError: probe failure: boom" in out


async def test_run_execution_error_json(trace_server, tmp_path, capsys):
    server = await trace_server("exec_error")
    path = prompt_file(tmp_path, recorded_prompt("exec_error"))
    assert await cli("run", str(path), "--server", server.url, "--json") == exit_codes.FAILED
    error = json.loads(capsys.readouterr().out)["error"]
    assert (error["node_id"], error["node_type"], error["exception_message"]) == ("4", "Boom", "probe failure: boom")


async def test_run_interrupted(trace_server, tmp_path, capsys):
    server = await trace_server("interrupted")
    path = prompt_file(tmp_path, recorded_prompt("interrupted"))
    assert await cli("run", str(path), "--server", server.url, "--json") == exit_codes.FAILED
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "interrupted"
    assert data["interrupted_at"] == {"node_id": "2", "node_type": "SlowSteps"}


async def test_run_rejected_prints_the_validation_report(trace_server, tmp_path, capsys):
    server = await trace_server("validation_missing_model")
    path = prompt_file(tmp_path, load_fixture("validation_missing_model")["request"])
    assert await cli("run", str(path), "--server", server.url) == exit_codes.REJECTED
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "rejected: Prompt outputs failed validation"
    assert ("node 4 (CheckpointLoaderSimple) input 'ckpt_name': Value not in list; "
            "received 'sd_xl_base_1.0.safetensors'; allowed: (none on the server)") in out


async def test_run_rejected_missing_node_json(trace_server, tmp_path, capsys):
    server = await trace_server("validation_missing_node")
    path = prompt_file(tmp_path, load_fixture("validation_missing_node")["request"])
    assert await cli("run", str(path), "--server", server.url, "--json") == exit_codes.REJECTED
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "rejected" and data["missing_node_types"] == ["UltimateSDUpscale"]


async def test_run_unreachable(tmp_path, capsys):
    path = prompt_file(tmp_path, recorded_prompt("success"))
    url = closed_port_url()
    assert await cli("run", str(path), "--server", url) == exit_codes.UNREACHABLE
    assert "is it running and listening on that port?" in capsys.readouterr().err


async def test_run_timeout_leaves_the_prompt_queued(trace_server, tmp_path, capsys, monkeypatch):
    server = await trace_server("success")
    monkeypatch.setattr(TraceServer, "_replay", lambda *_: _never())
    path = prompt_file(tmp_path, recorded_prompt("success"))
    # Long enough for the socket and the submit on a busy machine; the events never come.
    assert await cli("run", str(path), "--server", server.url, "--timeout", "1.5", "--json") == exit_codes.FAILED
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "timeout" and data["prompt_id"] == server.submitted[0]["prompt_id"]
    assert data["error"] == f"Gave up after 1.5 s; the prompt {data['prompt_id']} stays on the server"


async def test_run_timeout_during_the_submit_names_the_prompt_it_may_have_queued(trace_server, tmp_path, capsys,
                                                                                monkeypatch):
    release = asyncio.Event()

    async def slow_submit(self, request):
        self.submitted.append(await request.json())
        await release.wait()
        return web.json_response({})

    monkeypatch.setattr(TraceServer, "_prompt", slow_submit)
    server = await trace_server("success")
    path = prompt_file(tmp_path, recorded_prompt("success"))
    try:
        assert await cli("run", str(path), "--server", server.url, "--timeout", "2", "--json") == exit_codes.FAILED
    finally:
        release.set()
    data = json.loads(capsys.readouterr().out)
    [sent] = server.submitted
    assert data["status"] == "timeout" and data["prompt_id"] == sent["prompt_id"]
    assert data["error"] == (f"Gave up after 2 s while the server took the prompt; it may have queued it as "
                             f"{sent['prompt_id']} (look for that id in its queue)")


async def test_run_timeout_before_the_submit_says_nothing_was_queued(tmp_path, capsys):
    # A server that takes the connection and never answers: the websocket never opens.
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    path = prompt_file(tmp_path, recorded_prompt("success"))
    try:
        code = await cli("run", str(path), "--server", f"http://127.0.0.1:{port}", "--timeout", "0.5")
    finally:
        silent.close()
    assert code == exit_codes.FAILED
    assert "Gave up after 0.5 s, before the prompt was sent; nothing was queued" in capsys.readouterr().err


async def _never() -> None:
    return None


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "invalid JSON"),
    ('{"1": {"inputs": {}}}', "neither a UI workflow"),
    ("[]", "found an array"),
])
def test_bad_prompt_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(WorkflowError, match=message):
        load_run_file(path)


async def test_run_missing_file_is_no_input_before_any_network(tmp_path, capsys):
    assert await cli("run", str(tmp_path / "missing.json"), "--server", closed_port_url()) == exit_codes.NO_INPUT
    assert "cannot read" in capsys.readouterr().err
    assert await cli("run", str(tmp_path / "missing.json"), "--server", closed_port_url(), "--json") == 66
    assert json.loads(capsys.readouterr().out)["status"] == "unreadable"


async def test_run_bad_file_is_rejected_before_any_network(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text("[]")
    assert await cli("run", str(path), "--server", closed_port_url()) == exit_codes.REJECTED


def test_progress_line_rewrites_on_a_terminal_and_throttles_otherwise():
    state = PromptState("p", status="running", current_node="2", current_title="Slow Steps", value=10, max=20,
                        fraction=0.5, it_per_s=20.0, eta_s=0.5)
    tty = io.StringIO()
    line = ProgressLine(tty, tty=True)
    line.show(state)
    line.show(state)
    line.end()
    assert tty.getvalue() == ("\r\x1b[2K 50.0% Slow Steps 10/20 20.0 it/s ETA 0.5s" * 2) + "\n"

    now = [0.0]
    plain = io.StringIO()
    line = ProgressLine(plain, tty=False, interval=5, clock=lambda: now[0])
    line.show(state)
    now[0] = 1.0
    line.show(state)
    state.current_node, state.current_title = "3", "Save Image"
    line.show(state)
    now[0] = 7.0
    line.show(state)
    assert plain.getvalue().count("\n") == 3


# -- end to end on the simulator -------------------------------------------------

TXT2IMG = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly-fp16.safetensors"},
          "_meta": {"title": "Load Checkpoint"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a pistachio", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
    "3": {"class_type": "KSampler", "_meta": {"title": "Sampler"},
          "inputs": {"seed": 1, "steps": 6, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
                     "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                     "latent_image": ["5", 0]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "sim", "images": ["8", 0]}},
}


async def test_run_on_the_simulator(sim, tmp_path, capsys):
    path = prompt_file(tmp_path, TXT2IMG)
    assert await cli("run", str(path), "--server", sim.url, "--json") == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "success"
    [output] = data["outputs"]
    assert output["node_id"] == "9" and output["filename"].startswith("sim") and output["type"] == "output"


async def test_run_on_the_simulator_node_failure(sim, tmp_path, capsys):
    sim.fail_class("VAEDecode", "out of memory")
    path = prompt_file(tmp_path, TXT2IMG)
    assert await cli("run", str(path), "--server", sim.url, "--json") == exit_codes.FAILED
    error = json.loads(capsys.readouterr().out)["error"]
    assert (error["node_id"], error["node_type"], error["exception_message"]) == ("8", "VAEDecode", "out of memory")


async def test_run_on_the_simulator_missing_model(sim, tmp_path, capsys):
    prompt = json.loads(json.dumps(TXT2IMG))
    prompt["4"]["inputs"]["ckpt_name"] = "sd_xl_base_1.0.safetensors"
    path = prompt_file(tmp_path, prompt)
    assert await cli("run", str(path), "--server", sim.url, "--json") == exit_codes.REJECTED
    data = json.loads(capsys.readouterr().out)
    [node] = data["node_errors"]
    assert node["node_id"] == "4" and node["errors"][0]["type"] == "value_not_in_list"


async def test_run_a_ui_workflow_converts_it_with_the_servers_nodes(sim, tmp_path, capsys):
    from pistachio_tui.sim.catalog import seed_workflows

    path = tmp_path / "ui.json"
    path.write_bytes(seed_workflows()["sim_txt2img.json"])
    assert json.loads(path.read_text())["nodes"]
    assert await cli("run", str(path), "--server", sim.url, "--json") == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "success" and data["outputs"]


async def test_run_a_png_runs_its_embedded_prompt(sim, tmp_path, capsys):
    from pistachio_tui.workflow.imagemeta import png_text
    from tests.conftest import FIXTURES_DIR

    png = FIXTURES_DIR / "success_output.png"
    assert "prompt" in png_text(png.read_bytes())
    assert await cli("run", str(png), "--server", sim.url, "--json") == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "success"
    assert [o["filename"].startswith("probe") for o in data["outputs"]] == [True]


async def test_status_on_the_simulator(sim, capsys):
    assert await cli("status", "--server", sim.url, "--json") == exit_codes.OK
    assert json.loads(capsys.readouterr().out)["comfyui_version"] == "0.8.0"


async def test_status_prints_markup_in_a_servers_answer_as_text(sim, capsys, monkeypatch):
    """A version "0.8.0[/x]" or a device "cpu[/b]" is the server's text: ``status`` printed it
    through rich markup, which raised MarkupError (exit 70, "a bug in Pistachio")."""
    from pistachio_tui.sim import catalog

    stats = catalog.recorded_system_stats()
    stats["system"]["comfyui_version"] = "0.8.0[/x]"
    stats["devices"][0]["name"] = "cpu[/b] [red]"
    monkeypatch.setattr(catalog, "recorded_system_stats", lambda: json.loads(json.dumps(stats)))
    assert await cli("status", "--server", sim.url) == exit_codes.OK
    out = capsys.readouterr().out
    assert "ComfyUI 0.8.0[/x] at" in out and "cpu[/b] [red]" in out


@pytest.fixture
async def slow_sim():
    from pistachio_tui.sim.server import SimServer

    server = SimServer(step_delay=0.02)
    await server.start()
    yield server
    await server.stop()


async def start_run_and_wait_until_running(server, tmp_path, steps: int):
    import asyncio

    from pistachio_tui.comfy.client import ComfyClient

    prompt = json.loads(json.dumps(TXT2IMG))
    prompt["3"]["inputs"]["steps"] = steps
    task = asyncio.create_task(cli("run", str(prompt_file(tmp_path, prompt)), "--server", server.url, "--json"))
    async with ComfyClient(server.url) as client, asyncio.timeout(10):
        while not (await client.queue()).running:
            await asyncio.sleep(0.01)
    return task


async def test_run_survives_a_websocket_drop(slow_sim, tmp_path, capsys):
    task = await start_run_and_wait_until_running(slow_sim, tmp_path, steps=30)
    slow_sim.drop_websockets()
    assert await task == exit_codes.OK
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "success"
    assert "websocket lost" in captured.err


async def test_run_fails_when_a_restart_forgets_the_prompt(slow_sim, tmp_path, capsys):
    task = await start_run_and_wait_until_running(slow_sim, tmp_path, steps=200)
    await slow_sim.restart()
    assert await task == exit_codes.FAILED
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "lost" and "did it restart?" in data["error"]
