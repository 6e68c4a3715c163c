"""Dataset checks, trigger captions, the split, and configs from the preset tables."""

from __future__ import annotations

import json

import pytest
import toml
from PIL import Image

from pistachio_tui.cli import exit_codes, main
from pistachio_tui.training.dataset import PREP_METADATA, caption_with_trigger, inspect_dataset, split_names
from pistachio_tui.training.errors import DatasetProblem
from pistachio_tui.training.prepare import check_main_config, launch_command, prepare_run
from pistachio_tui.training.presets import GPUS, MODELS, PRESET_TABLE, get_preset


def make_dataset(folder, count=10, *, captions=True):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (640 + i, 480)).save(folder / f"img{i:02d}.png")
        if captions and i % 4:
            (folder / f"img{i:02d}.txt").write_text(f"a photo of thing {i}" if i % 3 else "")
    return folder


def test_inspect_reports_sizes_and_captions(tmp_path):
    src = make_dataset(tmp_path / "src")
    (src / "broken.jpg").write_bytes(b"not an image")
    (src / "notes.md").write_text("ignored")
    report = inspect_dataset(src)
    assert report.image_count == 11 and report.video_count == 0
    assert report.missing_captions == ["broken.jpg", "img00.png", "img04.png", "img08.png"]
    assert report.empty_captions == ["img03.png", "img06.png", "img09.png"]
    assert report.unreadable == ["broken.jpg"]
    assert {i.path.name: i.size for i in report.items}["img01.png"] == (641, 480)


def test_inspect_refuses_empty_or_missing_folder(tmp_path):
    with pytest.raises(DatasetProblem, match="not a folder"):
        inspect_dataset(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetProblem, match="no images"):
        inspect_dataset(tmp_path / "empty")


@pytest.mark.parametrize("caption, expected", [
    ("a cat", "pstch, a cat"),
    ("pstch, a cat", "pstch, a cat"),
    ("pstch a cat", "pstch a cat"),
    ("pstchx cat", "pstch, pstchx cat"),
    ("", "pstch"),
    (None, "pstch"),
])
def test_trigger_prepended_once(caption, expected):
    assert caption_with_trigger(caption, "pstch") == expected


def test_split_is_deterministic_and_80_20():
    names = [f"img{i}.png" for i in range(50)]
    train, held = split_names(names)
    assert len(held) == 10 and len(train) == 40 and not set(train) & set(held)
    assert split_names(list(reversed(names))) == (train, held)
    assert split_names(names, seed="other") != (train, held)
    assert split_names(["a.png"]) == (["a.png"], [])
    assert len(split_names(["a.png", "b.png"])[1]) == 1


def test_prepare_writes_split_captions_and_metadata(tmp_path):
    src = make_dataset(tmp_path / "src")
    run = prepare_run(src, tmp_path / "out", trigger="pstch", gpu="a100", model="flux")
    assert len(run.dataset.train) == 8 and len(run.dataset.eval) == 2
    for folder, names in ((run.dataset.train_dir, run.dataset.train), (run.dataset.eval_dir, run.dataset.eval)):
        for name in names:
            assert (folder / name).exists()
            assert (folder / name).with_suffix(".txt").read_text().startswith("pstch")
        assert json.loads((folder / PREP_METADATA).read_text())["trigger"] == "pstch"
    assert not (src / "img00.txt").exists()  # the source is never modified
    assert any("no caption file" in w for w in run.warnings)


@pytest.mark.parametrize("gpu, model", [(g, m) for g in GPUS for m in MODELS])
def test_configs_parse_back_and_match_the_table(tmp_path, gpu, model):
    src = make_dataset(tmp_path / "src", 20)
    run = prepare_run(src, tmp_path / "out", trigger="pstch", gpu=gpu, model=model, epochs=12)
    row = PRESET_TABLE[(GPUS[gpu].memory_class, model)]
    main_cfg = toml.load(run.main_toml)
    assert check_main_config(main_cfg) == []
    assert main_cfg["micro_batch_size_per_gpu"] == row["micro_batch"]
    assert main_cfg["gradient_accumulation_steps"] == row["grad_accum"]
    assert main_cfg["activation_checkpointing"] == row["activation_checkpointing"]
    assert main_cfg.get("blocks_to_swap") == row["blocks_to_swap"]
    assert main_cfg["model"].get("transformer_dtype") == row["transformer_dtype"]
    assert main_cfg["model"]["type"] == MODELS[model].model_type
    assert "blocks_to_swap" not in main_cfg["model"] and "alpha" not in main_cfg["adapter"]
    assert main_cfg["adapter"]["rank"] == row["rank"]
    assert main_cfg["optimizer"] == {**main_cfg["optimizer"], "type": row["optimizer"], "lr": row["lr"]}
    assert main_cfg["pipeline_stages"] == 1 and main_cfg["save_every_n_epochs"] == 1 and main_cfg["epochs"] == 12
    assert main_cfg["eval_datasets"] == [{"name": "eval", "config": str(run.eval_toml)}]
    assert main_cfg["dataset"] == str(run.dataset_toml)
    dataset_cfg, eval_cfg = toml.load(run.dataset_toml), toml.load(run.eval_toml)
    assert dataset_cfg["resolutions"] == eval_cfg["resolutions"] == [row["resolution"]]
    assert dataset_cfg["directory"][0]["path"] == str(run.dataset.train_dir)
    assert eval_cfg["directory"] == [{"path": str(run.dataset.eval_dir), "num_repeats": 1}]
    nccl = 'NCCL_P2P_DISABLE="1" NCCL_IB_DISABLE="1" '
    assert run.launch_command.startswith(nccl) == (gpu in ("4090", "5090"))
    assert run.launch_command.endswith(f"deepspeed --num_gpus=1 train.py --deepspeed --config {run.main_toml}")
    assert run.resume_command == run.launch_command + " --resume_from_checkpoint"
    assert all(choice.why for choice in run.preset.choices().values())


def test_launch_command_forms(tmp_path):
    cfg = tmp_path / "my run.toml"
    assert launch_command(cfg, "h200", num_gpus=8) == f"deepspeed --num_gpus=8 train.py --deepspeed --config '{cfg}'"
    assert launch_command(cfg, "4090", resume="20260820_10-00-00").endswith(
        '--resume_from_checkpoint "20260820_10-00-00"')


def test_config_traps_are_caught():
    problems = check_main_config({"output_dir": "o", "dataset": "d", "epochs": 1, "pipeline_stages": 2,
                                  "blocks_to_swap": 8, "model": {"blocks_to_swap": 3},
                                  "adapter": {"alpha": 16}, "eval_datasets": ["x.toml"]})
    text = " | ".join(problems)
    for needle in ("save_every_n_epochs", "alpha", "top level", "pipeline_stages = 1", "eval_datasets[0]"):
        assert needle in text


def test_unknown_preset_and_memory_classes():
    with pytest.raises(ValueError, match="GPUs: 3090, 4090, 5090, a6000, a40, l40s, a100, h100, h200"):
        get_preset("v100", "flux")
    classes = {key: gpu.memory_class for key, gpu in GPUS.items()}
    assert classes == {"3090": 24, "4090": 24, "5090": 32, "a6000": 48, "a40": 48, "l40s": 48,
                       "a100": 80, "h100": 80, "h200": 141}


def test_cli_prepare(tmp_path, capsys):
    src = make_dataset(tmp_path / "src", 12)
    assert main(["train", "prepare", str(src), "--trigger", "pstch", "--gpu", "4090", "--model", "wan14b",
                 "-o", str(tmp_path / "out")]) == exit_codes.OK
    out = capsys.readouterr().out
    assert "blocks_to_swap = 32:" in out and 'NCCL_P2P_DISABLE="1"' in out
    assert main(["train", "prepare", str(src), "--trigger", "pstch", "--gpu", "h200", "--model", "sdxl",
                 "-o", str(tmp_path / "out2"), "--json"]) == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert data["choices"]["micro_batch"]["value"] == 8 and not data["launch"].startswith("NCCL")
    assert main(["train", "prepare", str(tmp_path / "missing"), "--trigger", "x", "--gpu", "h200",
                 "--model", "sdxl"]) == exit_codes.USAGE
