"""Smaller things that broke: JSON on stdout when ``pods --json`` fails, a bad ``Retry-After``,
Ctrl-C on a batch."""

from __future__ import annotations

import asyncio
import json

import pytest

from pistachio_tui.cli import exit_codes, main
from pistachio_tui.runpod.errors import RateLimited
from pistachio_tui.runpod.http import retry_after_s


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("PISTACHIO_CONFIG_DIR", str(tmp_path / "config"))


def test_pods_json_failure_prints_a_json_error_object(monkeypatch, capsys):
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_TESTKEY1234")
    monkeypatch.setenv("RUNPOD_API_URL", "http://127.0.0.1:9/graphql")
    code = main(["pods", "--json"])
    out = capsys.readouterr().out
    assert code == exit_codes.UNREACHABLE
    body = json.loads(out)
    assert body["exit_code"] == code and body["error"]
    assert "TESTKEY" not in out


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "soon"])
def test_a_bad_retry_after_is_no_number(value):
    assert retry_after_s(value) is None
    assert "nan" not in str(RateLimited(retry_after_s(value))) and "inf" not in str(RateLimited(retry_after_s(value)))


async def test_ctrl_c_on_a_batch_says_interrupted_and_exits_130(sim, tmp_path, capsys):
    """SIGINT reaches ``asyncio.run`` as a cancel of the command: the batch stops its targets,
    keeps what finished, says "interrupted" (not "every target left") and exits 130."""
    from pistachio_tui.cli.batch_commands import run_batch
    from tests.fleet.test_batch_cli import SIM_WORKFLOW

    sim.step_delay = 0.2
    args = main.__globals__["build_parser"]().parse_args(
        ["batch", str(SIM_WORKFLOW), "--server", sim.url, "--count", "6", "-o", str(tmp_path / "o")])
    task = asyncio.create_task(run_batch(args))
    # Cancelled while jobs still run, however fast or loaded the machine: after the first finished.
    deadline = asyncio.get_running_loop().time() + 30
    while not sim.queue.history and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    task.cancel()
    code = await task
    captured = capsys.readouterr()
    assert code == exit_codes.INTERRUPTED
    assert "interrupted" in captured.out and "every target left" not in captured.out + captured.err


COMMANDS = {
    "inspect": ["workflow", "inspect", "F"],
    "convert": ["workflow", "convert", "F", "--server", "http://127.0.0.1:9", "-o", "OUT"],
    "run": ["run", "F", "--server", "http://127.0.0.1:9"],
    "batch": ["batch", "F", "--server", "http://127.0.0.1:9", "-o", "OUT"],
    "fix": ["fix", "F", "--server", "http://127.0.0.1:9"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("kind", "code"), [("missing", exit_codes.NO_INPUT), ("folder", exit_codes.NO_INPUT),
                                            ("broken", exit_codes.REJECTED)])
def test_an_unusable_input_is_named_once_with_one_exit_code_per_kind(command, kind, code, tmp_path, capsys):
    """Every command that reads a workflow says the same thing about a file it cannot use:
    the file's name once (``fix`` said "Cannot use f: f: $: …"), exit 66 for a file that is
    not there or not a file (``inspect``, ``convert`` and ``fix`` said 2, ``batch`` said 64 with a
    hint about batch files), exit 2 for a file that is no workflow."""
    path = tmp_path / "wf-input.json"
    if kind == "folder":
        path.mkdir()
    elif kind == "broken":
        path.write_text('{"nodes": ')
    argv = [str(path) if part == "F" else str(tmp_path / "out") if part == "OUT" else part
            for part in COMMANDS[command]]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.count("wf-input.json") == 1, err
    assert "Traceback" not in err and "relative to it" not in err
