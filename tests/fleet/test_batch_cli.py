"""``pistachio batch`` end to end against simulated servers."""

import asyncio
import json
import shutil
from pathlib import Path

from pistachio_tui.cli import exit_codes, main
from pistachio_tui.comfy.client import ComfyClient

SIM_WORKFLOW = Path(__file__).parents[2] / "pistachio_tui" / "sim" / "data" / "workflows" / "sim_txt2img.json"


def run_cli(argv):
    import asyncio

    # The CLI owns its event loop (asyncio.run), so it runs in a thread here.
    return asyncio.to_thread(main, argv)


async def test_grid_batch_over_two_servers_and_resume(two_sims, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["batch", str(SIM_WORKFLOW), "--server", two_sims[0].url, "--server", two_sims[1].url,
            "--count", "2", "--seed-mode", "increment", "--start-seed", "7", "--grid", "cfg=4,6",
            "-o", str(out), "--json"]
    assert await run_cli(argv) == exit_codes.OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["done"] == summary["total"] == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted((j["params"]["seed"], j["params"]["cfg"]) for j in manifest["jobs"]) == [
        (7, 4), (7, 6), (8, 4), (8, 6)]
    assert (out / "contact_sheet.png").exists()
    # Same command again: everything is journalled, nothing reruns.
    before = await history_sizes(two_sims)
    assert sum(before) == 4
    assert await run_cli(argv) == exit_codes.OK
    assert json.loads(capsys.readouterr().out)["done"] == 4
    assert await history_sizes(two_sims) == before


async def test_increment_without_start_seed_gives_each_job_its_own_seed(two_sims, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["batch", str(SIM_WORKFLOW), "--server", two_sims[0].url, "--count", "5", "--seed-mode", "increment",
            "-o", str(out), "--json"]
    assert await run_cli(argv) == exit_codes.OK
    manifest = json.loads((out / "manifest.json").read_text())
    seeds = sorted(j["params"]["seed"] for j in manifest["jobs"])
    first = json.loads(SIM_WORKFLOW.read_text())
    assert len(set(seeds)) == 5 and seeds == list(range(seeds[0], seeds[0] + 5))
    assert str(seeds[0]) in json.dumps(first), "counting starts from the workflow's own seed"


async def history_sizes(sims):
    sizes = []
    for sim in sims:
        async with ComfyClient(sim.url) as client:
            sizes.append(len(await client.history()))
    return sizes


async def test_seedless_workflow_with_count_is_refused(two_sims, tmp_path, capsys):
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
              "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["1", 0]}}}
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps(prompt))
    code = await run_cli(["batch", str(wf), "--server", two_sims[0].url, "--count", "3", "-o", str(tmp_path / "o")])
    assert code == exit_codes.REJECTED
    assert "no seed to vary" in capsys.readouterr().err


async def test_unreachable_servers(tmp_path, capsys):
    wf = tmp_path / "wf.json"
    shutil.copy(SIM_WORKFLOW, wf)
    code = await run_cli(["batch", str(wf), "--server", "http://127.0.0.1:9", "-o", str(tmp_path / "o")])
    assert code == exit_codes.UNREACHABLE


async def test_endpoint_without_key_explains(tmp_path, capsys):
    code = await run_cli(["batch", str(SIM_WORKFLOW), "--endpoint", "ep1", "-o", str(tmp_path / "o")])
    assert code == exit_codes.USAGE
    assert "RUNPOD_API_KEY" in capsys.readouterr().err


async def test_an_edited_workflow_is_a_new_batch(two_sims, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PISTACHIO_DATA_DIR", str(tmp_path / "data"))
    wf = tmp_path / "same.json"
    prompt = json.loads(SIM_WORKFLOW.read_text())
    wf.write_text(json.dumps(prompt))
    argv = ["batch", str(wf), "--server", two_sims[0].url, "--count", "2", "--json"]
    assert await run_cli(argv) == exit_codes.OK
    first = json.loads(capsys.readouterr().out)
    sampler = next(n for n in prompt["nodes"] if n["type"] == "KSampler")
    sampler["widgets_values"][2] += 1  # steps
    wf.write_text(json.dumps(prompt))
    assert await run_cli(argv) == exit_codes.OK
    second = json.loads(capsys.readouterr().out)
    # Before: "2/2 done" at once, the old images paired with the new workflow.
    assert Path(second["manifest"]).parent != Path(first["manifest"]).parent
    assert await history_sizes(two_sims[:1]) == [4]
    # An explicit folder holding the old workflow's batch is refused, not resumed.
    out = Path(first["manifest"]).parent
    assert await run_cli([*argv, "-o", str(out)]) == exit_codes.USAGE
    assert "another version of this workflow" in capsys.readouterr().err


async def test_output_path_that_is_a_file_is_a_usage_error(two_sims, tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    code = await run_cli(["batch", str(SIM_WORKFLOW), "--server", two_sims[0].url, "-o", str(blocker)])
    assert code == exit_codes.USAGE
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Traceback" not in err
    assert blocker.read_text() == "x"


async def test_non_finite_grid_values_are_refused_before_any_job(two_sims, tmp_path, capsys):
    for flag in ("cfg=1e999", "steps=inf", "seed=nan"):
        code = await run_cli(["batch", str(SIM_WORKFLOW), "--server", two_sims[0].url, "--grid", flag,
                              "-o", str(tmp_path / flag)])
        assert code == exit_codes.REJECTED, flag
        assert "not a number a server can take" in capsys.readouterr().err
    assert await history_sizes(two_sims[:1]) == [0]


async def test_a_grid_value_the_server_refuses_fails_its_jobs_only(two_sims, tmp_path, capsys):
    """steps=100000 is beyond KSampler's max: its jobs fail with the server's reason, the
    steps=3 jobs run, and the server is not declared gone (it was, after three refusals,
    stranding every other job with "every target left", exit 3)."""
    out = tmp_path / "out"
    code = await run_cli(["batch", str(SIM_WORKFLOW), "--server", two_sims[0].url, "--grid", "steps=100000,3",
                          "--count", "2", "-o", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == exit_codes.FAILED
    assert summary["done"] == 2 and len(summary["failed"]) == 2 and summary["stranded"] == []
    assert all("bigger than max" in why for why in summary["failed"].values())
    assert summary["targets"][two_sims[0].url]["down"] is None


async def test_batch_flags_that_make_no_batch_are_usage_errors(two_sims, tmp_path, capsys):
    for flags, says in ((["--max-ahead", "0"], "--max-ahead must be at least 1"),
                        (["--grid", "steps=3,,4"], "no empty value"),
                        (["--count", "100000000"], "would make 100,000,000 jobs")):
        code = await asyncio.wait_for(run_cli(["batch", str(SIM_WORKFLOW), "--server", two_sims[0].url, *flags,
                                               "-o", str(tmp_path / "out")]), 20)
        assert code == exit_codes.USAGE, flags
        assert says in capsys.readouterr().err
    assert await history_sizes(two_sims[:1]) == [0]


async def test_a_bad_value_at_any_grid_point_is_refused_before_any_job(two_sims, tmp_path, capsys):
    code = await run_cli(["batch", str(SIM_WORKFLOW), "--server", two_sims[0].url, "--grid", "cfg=4,5,abc",
                          "-o", str(tmp_path / "out")])
    assert code == exit_codes.REJECTED and "cfg must be a number, got 'abc'" in capsys.readouterr().err
    assert await history_sizes(two_sims[:1]) == [0]
