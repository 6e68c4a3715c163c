"""``python -m pistachio_tui.sim`` options and serving."""

from __future__ import annotations

import asyncio

import httpx

from pistachio_tui.sim.__main__ import parse_args, serve


def test_defaults():
    args = parse_args([])
    assert (args.port, args.step_delay, args.manager, args.models_dir) == (8188, 0.05, False, None)


def test_options(tmp_path):
    args = parse_args(["--port", "0", "--step-delay", "0.001", "--manager", "--models-dir", str(tmp_path)])
    assert (args.port, args.step_delay, args.manager, args.models_dir) == (0, 0.001, True, tmp_path)


async def test_serve_listens_on_loopback(unused_tcp_port, capsys):
    task = asyncio.create_task(serve(parse_args(["--port", str(unused_tcp_port), "--manager"])))
    url = f"http://127.0.0.1:{unused_tcp_port}"
    try:
        for _ in range(200):
            try:
                async with httpx.AsyncClient(base_url=url) as http:
                    assert (await http.get("/v2/manager/version")).text == "V4.0.4"
                    break
            except httpx.ConnectError:
                await asyncio.sleep(0.01)
        else:
            raise AssertionError("the simulator never started listening")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert url in capsys.readouterr().err
