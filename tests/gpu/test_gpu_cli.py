import json
import socket

from pistachio_tui.cli import build_parser, exit_codes
from pistachio_tui.cli.gpu_commands import run_gpu
from pistachio_tui.config import ServerConfig, Settings, save_settings
from pistachio_tui.gpu.nvml import NO_DRIVER, NvmlReader
from tests.gpu import fake_nvml
from tests.gpu.fake_nvml import FakeNvml, two_gpus


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def no_driver() -> NvmlReader:
    return NvmlReader(FakeNvml(init_error=fake_nvml.NVMLError_DriverNotLoaded))


async def test_json_with_fake_gpus_and_the_simulator(sim, capsys) -> None:
    args = build_parser().parse_args(["gpu", "--server", sim.url, "--json"])
    assert await run_gpu(args, reader=NvmlReader(two_gpus())) == exit_codes.OK
    out = json.loads(capsys.readouterr().out)
    assert out["local"]["available"] and [g["key"] for g in out["local"]["gpus"]] == ["local:0", "local:1"]
    (server,) = out["servers"]
    assert server["up"] and server["url"] == sim.url and server["ram_total"] > 0
    assert server["devices"] and server["devices"][0]["memory_total"] > 0


async def test_human_output_without_driver_uses_the_configured_servers(sim, capsys) -> None:
    save_settings(Settings(servers=[ServerConfig(name="sim", url=sim.url)]))
    args = build_parser().parse_args(["gpu"])
    assert await run_gpu(args, reader=no_driver()) == exit_codes.OK
    out = capsys.readouterr().out
    assert NO_DRIVER in out and "Server sim" in out and "sim · cpu: RAM " in out and "VRAM" not in out


async def test_unreachable_server_exits_unreachable_with_the_reason(capsys) -> None:
    url = closed_port_url()
    args = build_parser().parse_args(["gpu", "--server", url, "--json"])
    assert await run_gpu(args, reader=no_driver()) == exit_codes.UNREACHABLE
    (server,) = json.loads(capsys.readouterr().out)["servers"]
    assert not server["up"] and url in server["reason"]


async def test_real_nvml_on_this_machine_never_fails_the_command(capsys) -> None:
    args = build_parser().parse_args(["gpu"])
    assert await args.func(args) == exit_codes.OK
    assert "This machine" in capsys.readouterr().out
