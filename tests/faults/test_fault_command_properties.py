"""Property tests of the command layer (hypothesis): whatever numbers and words the
arguments and files hold — NaN, Infinity, 1e999, Unicode digits, empty values — only the
project's own errors come out, and the commands end with one of their documented codes.

The random-case fuzz in ``test_fault_commands`` runs whole command lines over mutated files;
these shrink a failure to its smallest input.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pistachio_tui.cli import build_parser, exit_codes, main
from pistachio_tui.fleet.build import check_jobs
from pistachio_tui.fleet.spec import BatchSpecError, expand, workflow_seed
from pistachio_tui.sim import catalog
from pistachio_tui.workflow.convert import to_api
from pistachio_tui.workflow.errors import WorkflowError
from pistachio_tui.workflow.load import load_workflow
from tests.workflow.helpers import object_info

KNOWN_CODES = {exit_codes.OK, exit_codes.FAILED, exit_codes.REJECTED, exit_codes.UNREACHABLE, exit_codes.USAGE,
               exit_codes.NO_INPUT}
DEAD = "http://127.0.0.1:9"
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: Number-ish words as a person (or a script) might type them.
number_words = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "٣", "１２", "²", "0x10", "1_000",
                     "", " ", "3,", "1e-400"]),
    st.text(max_size=6),
)
grid_names = st.sampled_from(["cfg", "seed", "steps", "width", "denoise", "prompt", "sampler", "nosuch", "", "seed "])


def _api_base() -> dict:
    """The simulator's txt2img workflow as the API prompt a batch varies."""
    text = catalog.seed_workflows()["sim_txt2img.json"]
    workflow = load_workflow(text.encode() if isinstance(text, str) else text)
    return to_api(workflow, object_info()).prompt


BASE = _api_base()


@SETTINGS
@given(grid=st.lists(st.tuples(grid_names, st.lists(number_words, max_size=3)), max_size=3),
       count=st.one_of(st.none(), number_words), start_seed=st.one_of(st.none(), number_words),
       max_ahead=st.one_of(st.none(), number_words))
def test_batch_arguments_only_raise_the_projects_errors(grid, count, start_seed, max_ahead):
    """``batch`` argument parsing down to the first job's prompt, without a server."""
    from pistachio_tui.cli.batch_commands import _spec

    argv = ["batch", "wf.json"]
    for name, values in grid:
        argv.append(f"--grid={name}={','.join(values)}")
    for flag, value in (("--count", count), ("--start-seed", start_seed), ("--max-ahead", max_ahead)):
        if value is not None:
            argv.append(f"{flag}={value}")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's own refusal of a flag's type
        assert exc.code == 2
        return
    try:
        spec = _spec(args)
        jobs = expand(spec, workflow_seed(BASE))
        check_jobs(BASE, jobs)
    except (BatchSpecError, WorkflowError):
        return
    for job in jobs:
        for value in job.describe().values():
            assert not (isinstance(value, float) and not math.isfinite(value)), job


#: JSON values a node input might hold in a hostile file; json.dumps writes NaN and Infinity.
input_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(10**400),
                         max_value=10**400), st.text(max_size=5), st.none(), st.booleans(),
                         st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                              max_size=2))


@pytest.fixture
def files(tmp_path):
    return tmp_path


@SETTINGS
@given(changes=st.lists(st.tuples(st.sampled_from(sorted(BASE)), st.text(max_size=8), input_values), max_size=4),
       meta=st.one_of(st.none(), input_values), command=st.sampled_from(["inspect", "convert", "run"]))
def test_commands_reading_a_hostile_prompt_end_with_a_known_code(files, changes, meta, command, capsys):
    """An API prompt with random values grafted into its inputs (and ``_meta``), through
    ``workflow inspect``, ``workflow convert`` and ``run``: never the top-level handler."""
    prompt = json.loads(json.dumps(BASE))
    for node_id, name, value in changes:
        prompt[node_id]["inputs"][name or "seed"] = value
    if meta is not None:
        prompt[sorted(prompt)[0]]["_meta"] = meta
    path = files / "hostile.json"
    path.write_text(json.dumps(prompt))
    oi = files / "object_info.json"
    if not oi.exists():
        oi.write_text(json.dumps(object_info()))
    argv = {"inspect": ["workflow", "inspect", str(path), "--object-info", str(oi), "--json"],
            "convert": ["workflow", "convert", str(path), "--object-info", str(oi), "-o", str(files / "out.json"),
                        "--force"],
            "run": ["run", str(path), "--server", DEAD, "--timeout", "5"]}[command]
    code = main(argv)
    err = capsys.readouterr().err
    assert code in KNOWN_CODES, (argv, code, err)
    assert "Traceback" not in err and "unexpected error" not in err
