"""Promoting an epoch into ComfyUI, and the acceptance run end to end (API and CLI)."""

from __future__ import annotations

import hashlib
import json

import pytest

from pistachio_tui.cli import exit_codes, main
from pistachio_tui.training.checkpoints import ADAPTER_FILE
from pistachio_tui.training.errors import CheckpointUnusable, PromoteRefused
from pistachio_tui.training.promote import lora_name, promote, run_title
from pistachio_tui.training.watch import RunWatcher
from tests.training.helpers import make_comfy, make_run


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_acceptance_pick_17_and_promote_via_api(tmp_path):
    run = make_run(tmp_path)
    comfy = make_comfy(tmp_path)
    state = RunWatcher(run.output_dir).poll()
    pick = state.convergence(patience=3)
    assert pick.chosen == "epoch17" and pick.best_step == 136
    result = promote(state.run_dir, pick.chosen, comfy)
    assert result.path == comfy / "models" / "loras" / "pstch-output_20260820-1000-epoch17.safetensors"
    source = run.run_dir / "epoch17" / ADAPTER_FILE
    assert result.sha256 == sha(source) == sha(result.path) and result.size == source.stat().st_size
    assert result.trigger == "pstch" and not result.replaced
    assert [p.name for p in result.path.parent.iterdir()] == [result.path.name]  # no temp file left


def test_acceptance_via_cli(tmp_path, capsys):
    run = make_run(tmp_path)
    comfy = make_comfy(tmp_path)
    assert main(["train", "best", str(run.output_dir), "--json"]) == exit_codes.OK
    best = json.loads(capsys.readouterr().out)
    assert (best["best"], best["best_epoch"], best["best_step"]) == ("epoch17", 17, 136)
    assert best["explanation"] == "epoch17 (step 136): lowest eval loss 0.0812; rose for the next 3 evals"
    code = main(["train", "promote", str(run.output_dir), "--checkpoint", best["best"],
                 "--comfy", str(comfy), "--name", "my style", "--json"])
    assert code == exit_codes.OK
    out = json.loads(capsys.readouterr().out)
    assert out["path"].endswith("/pstch-my_style-epoch17.safetensors") and out["trigger"] == "pstch"
    assert main(["train", "promote", str(run.output_dir), "--epoch", "17", "--comfy", str(comfy),
                 "--name", "my style"]) == exit_codes.REJECTED
    assert "already exists" in capsys.readouterr().err
    assert main(["train", "promote", str(run.output_dir), "--epoch", "17", "--comfy", str(comfy),
                 "--name", "my style", "--overwrite"]) == exit_codes.OK


def test_refuses_overwrite_without_flag(tmp_path):
    run = make_run(tmp_path, tensorboard=False)
    comfy = make_comfy(tmp_path)
    first = promote(run.run_dir, 3, comfy)
    first.path.write_bytes(b"user's own file")
    with pytest.raises(PromoteRefused, match="already exists"):
        promote(run.run_dir, 3, comfy)
    assert first.path.read_bytes() == b"user's own file"
    again = promote(run.run_dir, 3, comfy, overwrite=True)
    assert again.replaced and sha(again.path) == first.sha256


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(b""), "0 bytes"),
    (lambda p: p.write_bytes(b"\x10" * 8 + b"garbage"), "does not fit"),
    (lambda p: p.unlink(), "missing"),
])
def test_refuses_bad_sources(tmp_path, damage, message):
    run = make_run(tmp_path, tensorboard=False)
    comfy = make_comfy(tmp_path)
    damage(run.run_dir / "epoch5" / ADAPTER_FILE)
    with pytest.raises(CheckpointUnusable, match=message):
        promote(run.run_dir, 5, comfy)
    assert list((comfy / "models" / "loras").iterdir()) == []


def test_refuses_a_folder_that_is_not_comfyui(tmp_path):
    run = make_run(tmp_path, tensorboard=False)
    with pytest.raises(PromoteRefused, match="does not look like a ComfyUI folder"):
        promote(run.run_dir, 5, tmp_path / "elsewhere")


def test_no_trigger_recorded(tmp_path):
    run = make_run(tmp_path, tensorboard=False, trigger=None)
    assert promote(run.run_dir, 1, make_comfy(tmp_path)).trigger is None


def test_names_are_readable_and_filesystem_safe(tmp_path):
    assert lora_name("20260820_10-00-00", 7) == "20260820_10-00-00-epoch7.safetensors"
    assert lora_name("my/odd name!", "step15", "pstch") == "pstch-my_odd_name-step15.safetensors"
    assert lora_name("pstch_style", "epoch3", "pstch") == "pstch_style-epoch3.safetensors"
    assert run_title(tmp_path / "alice_lora" / "runs" / "20260820_10-00-00") == "alice_lora_20260820-1000"
    with pytest.raises(ValueError, match="not a checkpoint name"):
        lora_name("run", "global_step40")


FAKE_SSH = """#!/bin/sh
# Stand-in for OpenSSH's ssh: options, then the host, then the command, run here.
while [ "$#" -gt 2 ]; do
  case "$1" in -o|-p|-i) shift 2 ;; *) break ;; esac
done
echo "$@" >> "$FAKE_LOG"
shift
exec sh -c "$*"
"""
FAKE_SCP = """#!/bin/sh
# Stand-in for scp: options, then the source, then host:path, copied here.
while [ "$#" -gt 2 ]; do
  case "$1" in -q) shift ;; -o|-P|-i) shift 2 ;; *) break ;; esac
done
echo "scp $@" >> "$FAKE_LOG"
cp "$1" "${2#*:}"
"""


def test_promote_to_a_pod_over_ssh(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("ssh", FAKE_SSH), ("scp", FAKE_SCP)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.log"))
    run = make_run(tmp_path, tensorboard=False)
    pod = tmp_path / "workspace" / "ComfyUI"
    (pod / "models").mkdir(parents=True)
    args = ["train", "promote", str(run.run_dir), "--checkpoint", "epoch17", "--remote", f"root@pod:{pod}",
            "--ssh-port", "22022", "--json"]
    assert main(args) == exit_codes.OK
    out = json.loads(capsys.readouterr().out)
    target = pod / "models" / "loras" / "pstch-output_20260820-1000-epoch17.safetensors"
    assert out["path"] == str(target) and sha(target) == out["sha256"]
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no partial file left
    assert "root@pod" in (tmp_path / "calls.log").read_text()
    assert main(args) == exit_codes.REJECTED and "already exists" in capsys.readouterr().err
    assert main(args[:-1] + ["--overwrite"]) == exit_codes.OK
    assert main(["train", "promote", str(run.run_dir), "--epoch", "3", "--remote", f"root@pod:{tmp_path}/nope"]) \
        == exit_codes.REJECTED
    assert "no models/ folder" in capsys.readouterr().err
