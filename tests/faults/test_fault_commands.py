"""The command layer under hostile input: typos, broken files, non-finite numbers.

Every command ends with a message and an exit code of its own; the top-level
handler (exit 70, a line pointing at the debug log) is for bugs, and the fuzz
below fails if any input reaches it.
"""

from __future__ import annotations

import json
import os
import random
import stat

import pytest

from pistachio_tui.cli import exit_codes, main
from tests.faults.generators import json_value, mutate
from tests.faults.helpers import TRACEBACK_MARKERS
from tests.workflow.helpers import tiny_ui

DEAD = "http://127.0.0.1:9"
KNOWN_CODES = {exit_codes.OK, exit_codes.FAILED, exit_codes.REJECTED, exit_codes.UNREACHABLE, exit_codes.USAGE,
               exit_codes.NO_INPUT}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("PISTACHIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("PISTACHIO_DATA_DIR", str(tmp_path / "data"))


def _main(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return exc.code


def _no_traceback(text):
    # argparse's usage text is indented, so only the two unmistakable markers count here.
    assert not any(marker in text for marker in TRACEBACK_MARKERS[:2]), text


@pytest.mark.parametrize(("server", "says"), [
    (":99999", "not a valid URL (Port out of range"), ("localhost:abc", "not a valid URL (Port could not be cast"),
    ("http://[::1", "not a valid URL (Invalid IPv6 URL)"), ("ftp://x", "must start with http:// or https://"),
    ("http://127.0.0.1:0", "port 0"), (" ", "names no host"), ("http://h:8188/?x=1", "without ?… or #…"),
], ids=[":99999", "localhost:abc", "[::1", "ftp", "port0", "blank", "query"])
@pytest.mark.parametrize("command", [["status"], ["workflow", "inspect", "WF"], ["batch", "WF"], ["gpu"], ["queue"],
                                     ["models", "list"], ["restart"], ["fix", "WF"]], ids=lambda c: c[-1])
def test_server_typos_are_usage_errors(command, server, says, tmp_path, capsys):
    """``gpu --server localhost:abc`` ended in httpx's InvalidURL (exit 70); a blank server
    was looked up in DNS. Every command refuses a typo the way the app's server form does."""
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps(tiny_ui()))
    argv = [str(wf) if part == "WF" else part for part in command] + ["--server", server]
    assert _main(argv) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1, err
    _no_traceback(err)


def test_an_unexpected_exception_is_one_line_exit_70_and_a_private_debug_log(tmp_path, capsys, monkeypatch):
    from pistachio_tui.cli import comfy_commands, debug_log_path

    async def boom(args):
        raise RuntimeError("deep inside\nsecond line https://user:pw@host/x?token=abc")

    monkeypatch.setattr(comfy_commands, "status_command", boom)
    from pistachio_tui.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["status"])
    args.func = boom
    monkeypatch.setattr("pistachio_tui.cli.build_parser", lambda: _Fixed(parser, args))
    assert main(["status"]) == exit_codes.INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: deep inside" in err and str(debug_log_path()) in err
    _no_traceback(err)
    log = debug_log_path()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert "Traceback" in text and "boom" in text
    assert "pw@" not in text and "token=abc" not in text


class _Fixed:
    """A parser that returns prepared arguments (the command's function swapped for a failing one)."""

    def __init__(self, parser, args):
        self._parser, self._args = parser, args

    def parse_args(self, argv):
        return self._args


def _files(rng, tmp_path, n):
    """Workflow-ish files: real, mutated, random JSON, NaN-laden, empty, a folder, missing."""
    real = json.dumps(tiny_ui()).encode()
    made = []
    for i in range(n):
        path = tmp_path / f"in{i}.json"
        roll = rng.random()
        if roll < 0.3:
            path.write_bytes(mutate(rng, real))
        elif roll < 0.5:
            path.write_text(json.dumps(json_value(rng)))
        elif roll < 0.6:
            path.write_text(json.dumps({"1": {"class_type": "KSampler", "inputs": {"seed": float("nan")}}}))
        elif roll < 0.7:
            path.write_bytes(real)
        elif roll < 0.8:
            path.mkdir()
        elif roll < 0.9:
            path.write_bytes(b"")
        made.append(path)
    return made


NUMBERS = ["nan", "inf", "-inf", "1e999", "-1", "0", "3", "abc", "", "1.5", "٣"]


def _argv(rng, files, tmp_path):
    f = str(rng.choice(files))
    kind = rng.randrange(4)
    if kind == 0:
        return ["workflow", "inspect", f, *rng.choice([[], ["--json"], ["--server", DEAD], ["--object-info", f]])]
    if kind == 1:
        return ["workflow", "convert", f, *rng.choice([["--server", DEAD], ["--object-info", f]]),
                "-o", rng.choice([f, str(tmp_path / "out.json"), str(tmp_path)]), *rng.choice([[], ["--force"]])]
    if kind == 2:
        extra = rng.choice([["--grid", f"{rng.choice(['cfg', 'seed', 'steps', ''])}={rng.choice(NUMBERS)}"],
                            ["--count", rng.choice(NUMBERS)], ["--max-ahead", rng.choice(NUMBERS)],
                            ["--start-seed", rng.choice(NUMBERS)], []])
        return ["batch", f, "--server", DEAD, "-o", str(tmp_path / "batch"), *extra]
    return ["run", f, "--server", DEAD, *rng.choice([["--timeout", rng.choice(NUMBERS)], ["--json"], []])]


def test_command_fuzz_only_the_projects_own_errors_escape(tmp_path, capsys):
    rng = random.Random(20261201)
    files = _files(rng, tmp_path, 24)
    for case in range(160):
        argv = _argv(rng, files, tmp_path)
        code = _main(argv)
        err = capsys.readouterr().err
        assert code in KNOWN_CODES, f"case {case}: {argv} → {code}: {err}"
        _no_traceback(err)
    assert not (tmp_path / "config" / "state" / "debug.log").exists()
    # convert never replaced one of its inputs with an API prompt
    for path in files:
        if path.is_file() and path.stat().st_size:
            assert b'"class_type"' not in path.read_bytes() or b"KSampler" in path.read_bytes()
    assert os.path.exists(tmp_path)


SECONDS_FLAGS = [
    (["run", "wf.json", "--timeout"], True), (["restart", "--timeout"], True), (["fix", "wf.json", "--restart-timeout"], True),
    (["pods", "start", "p1", "--bid"], True), (["pods", "guard", "--interval"], True),
    (["pods", "guard", "--idle-minutes"], False), (["pods", "guard", "--countdown"], False),
    (["train", "watch", "run", "--interval"], True), (["train", "best", "run", "--tolerance"], False),
    (["demo", "--step-delay"], False),
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "-1", "0", "abc"])
@pytest.mark.parametrize(("argv", "positive"), SECONDS_FLAGS, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_numbers_that_make_no_sense_are_refused_by_the_parser(argv, positive, value, capsys):
    """``run --timeout nan`` said "Gave up after nan s; the prompt None stays on the server";
    ``pods start --bid nan`` would send NaN to RunPod, ``--interval 0`` polls in a busy loop."""
    if value == "0" and not positive:
        return  # 0 is a fine countdown, tolerance or simulated step
    *command, flag = argv
    assert _main([*command, f"{flag}={value}"]) == 2
    err = capsys.readouterr().err
    assert "give a number" in err and repr(value) in err
    _no_traceback(err)
