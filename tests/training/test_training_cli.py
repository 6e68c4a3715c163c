"""``pistachio train watch`` / ``best`` from the command line."""

from __future__ import annotations

import json

from pistachio_tui.cli import exit_codes, main
from pistachio_tui.training.synth import write_log
from tests.training.helpers import make_run


def test_watch_text_report(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["train", "watch", str(run.run_dir)]) == exit_codes.OK
    out = capsys.readouterr().out
    assert "complete  epoch 30/30  step 240/240" in out
    assert "saved epochs: 1-30; resume states: global_step240" in out


def test_watch_json(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["train", "watch", str(run.log_path), "--json"]) == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "complete" and data["steps_per_epoch"] == 8
    assert data["eval_loss_by_epoch"]["17"] == min(data["eval_loss_by_epoch"].values())
    assert [s["epoch"] for s in data["saved"] if s["ok"]] == list(range(1, 31))


def test_watch_follow_stops_when_the_run_is_complete(tmp_path, capsys):
    run = make_run(tmp_path, tensorboard=False)
    assert main(["train", "watch", str(run.run_dir), "--follow", "--json", "--interval", "0.01"]) == exit_codes.OK
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1])["status"] == "complete"


def test_watch_failed_run_exits_failed_with_advice(tmp_path, capsys):
    log = write_log(tmp_path / "crash.log", epochs=2, steps_per_epoch=4, crash_at_step=3)
    assert main(["train", "watch", str(log)]) == exit_codes.FAILED
    out = capsys.readouterr().out
    assert "error [oom]" in out and "blocks_to_swap" in out


def test_bad_target_and_missing_action(tmp_path, capsys):
    assert main(["train", "watch", str(tmp_path / "nope")]) == exit_codes.USAGE
    assert "does not exist" in capsys.readouterr().err
    assert main(["train"]) == exit_codes.USAGE


def test_best_without_eval_data_fails(tmp_path, capsys):
    log = write_log(tmp_path / "noeval.log", epochs=2, steps_per_epoch=4)
    assert main(["train", "best", str(log)]) == exit_codes.FAILED
    assert "no eval loss yet" in capsys.readouterr().out


def test_best_with_patience(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["train", "best", str(run.run_dir), "--patience", "5"]) == exit_codes.OK
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "epoch17 (step 136): lowest eval loss 0.0812; rose for the next 5 evals"
    assert out[17] == "★ epoch17    step    136  0.0812" and len(out) == 31
    assert main(["train", "best", str(run.run_dir), "--patience", "0"]) == exit_codes.USAGE
