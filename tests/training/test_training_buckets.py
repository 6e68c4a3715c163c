"""prepare's bucket math against upstream's dataset code, on real camera/phone/video sizes.

Expected figures are worked out by hand from upstream utils/dataset.py: aspect buckets
geomspace(0.5, 2, 7) rounded to 3 decimals = 0.5, 0.63, 0.794, 1.0, 1.26, 1.587, 2.0; each
file to the nearest in log space; sizes for 512 px rounded to multiples of 16.
"""

from __future__ import annotations

import json
import struct

import pytest
import toml
from PIL import Image

from pistachio_tui.cli import exit_codes, main
from pistachio_tui.training.buckets import (
    BucketSettings,
    MediaShape,
    ar_buckets,
    frame_bucket,
    plan_buckets,
    repeats_to_keep_all,
)
from pistachio_tui.training.errors import DatasetProblem
from pistachio_tui.training.media import video_info
from pistachio_tui.training.prepare import prepare_run
from pistachio_tui.training.presets import gpu_from_nvml
from pistachio_tui.training.replay import TrainerConfig, replay_run
from pistachio_tui.training.watch import RunWatcher

#: (width, height, how many): square exports, SDXL portrait/landscape, phone photos, 16:9 video frames.
REAL_SIZES = [(1024, 1024, 3), (832, 1216, 2), (1080, 1920, 1), (1920, 1080, 2), (1216, 832, 1),
              (3024, 4032, 3), (4032, 3024, 1)]


def shapes(sizes=REAL_SIZES) -> list[MediaShape]:
    return [MediaShape(f"{w}x{h}_{i}.jpg", w, h) for w, h, n in sizes for i in range(n)]


def test_ar_buckets_match_upstream_defaults():
    assert ar_buckets(BucketSettings()) == [0.5, 0.63, 0.794, 1.0, 1.26, 1.587, 2.0]
    assert ar_buckets(BucketSettings(enable_ar_bucket=False)) == [1.0]


def test_real_sizes_fall_in_the_buckets_the_trainer_uses():
    plan = plan_buckets(shapes(), BucketSettings(), num_repeats=1, global_batch=1)
    got = {(b.ar, b.width, b.height): b.files for b in plan.buckets}
    # 16:9 frames (1.778) sit nearer 1.587 than 2.0 in log space; 9:16 nearer 0.63 than 0.5.
    assert got == {(0.63, 400, 640): 3, (0.794, 464, 576): 3, (1.0, 512, 512): 3, (1.26, 576, 464): 1,
                   (1.587, 640, 400): 3}


def test_rounding_to_the_global_batch_drops_and_repeats_fix_it():
    files = shapes()
    plan = plan_buckets(files, BucketSettings(), num_repeats=1, global_batch=4)
    assert plan.empty and plan.dropped == 13  # every bucket is smaller than 4: "Processed dataset was empty"
    two = plan_buckets(files, BucketSettings(), num_repeats=1, global_batch=2)
    assert [(b.ar, b.kept, b.dropped) for b in two.buckets] == [
        (0.63, 2, 1), (0.794, 2, 1), (1.0, 2, 1), (1.26, 0, 1), (1.587, 2, 1)]
    assert two.steps_per_epoch == 4
    assert repeats_to_keep_all([3, 3, 3, 1, 3], 4) == 4
    fixed = plan_buckets(files, BucketSettings(), num_repeats=4, global_batch=4)
    assert fixed.dropped == 0 and fixed.kept == 52 and fixed.steps_per_epoch == 13
    assert repeats_to_keep_all([3, 2], 6, at_least=5) == 6


def test_frame_buckets_for_videos():
    assert frame_bucket(1, (1, 33)) == 1
    assert frame_bucket(80, (1, 33, 65)) == 65
    assert frame_bucket(20, (1, 33)) is None  # shorter than every video bucket: skipped
    assert frame_bucket(100, (1,)) is None  # a [1] frame bucket drops every video
    plan = plan_buckets([MediaShape("clip.mp4", 1280, 720, 80), MediaShape("short.mp4", 1280, 720, 12)],
                        BucketSettings(frame_buckets=(1, 33, 65)), num_repeats=1, global_batch=1)
    assert [(b.frames, b.files) for b in plan.buckets] == [(65, 1)] and plan.too_short == ["short.mp4"]


def tiny_mp4(path, width: int, height: int, seconds: float, timescale: int = 600) -> None:
    """ftyp + moov(mvhd, trak(tkhd)) + mdat, laid out as ISO/IEC 14496-12 says (version 0 boxes)."""
    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I4s", 8 + len(body), kind) + body

    duration = int(seconds * timescale)
    mvhd = box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, timescale, duration) + bytes(80))
    tkhd = box(b"tkhd", b"\x00\x00\x00\x03" + struct.pack(">IIII", 0, 0, 1, 0) + struct.pack(">I", duration)
               + bytes(8) + bytes(8) + bytes(36) + struct.pack(">II", width << 16, height << 16))
    path.write_bytes(box(b"ftyp", b"isom\x00\x00\x02\x00isom") + box(b"mdat", bytes(64))
                     + box(b"moov", mvhd + box(b"trak", tkhd)))


def test_mp4_header_gives_size_and_length(tmp_path):
    tiny_mp4(tmp_path / "a.mp4", 1280, 720, 5.0)
    info = video_info(tmp_path / "a.mp4")
    assert (info.width, info.height, info.seconds) == (1280, 720, 5.0)
    assert info.frames_at(16) == 80


def make_mixed(folder, sizes=REAL_SIZES, scale=4):
    """Images with the real sizes' aspect ratios (scaled down 4× to keep the test fast)."""
    folder.mkdir(parents=True, exist_ok=True)
    for w, h, n in sizes:
        for i in range(n):
            name = f"{w}x{h}_{i}"
            Image.new("RGB", (w // scale, h // scale), (i * 40, 90, 120)).save(folder / f"{name}.jpg")
            (folder / f"{name}.txt").write_text(f"a photo, {w}x{h}")
    return folder


def test_prepare_report_for_a_mixed_aspect_dataset(tmp_path, capsys):
    src = make_mixed(tmp_path / "alice")
    assert main(["train", "prepare", str(src), "--trigger", "pstch", "--gpu", "4090", "--model", "wan14b",
                 "-o", str(tmp_path / "alice_lora"), "--epochs", "10"]) == exit_codes.OK
    report = capsys.readouterr().out
    data = toml.load(tmp_path / "alice_lora" / "dataset.toml")
    repeats = data["directory"][0]["num_repeats"]
    assert repeats % 4 == 0  # the 4090 preset's global batch is 1 × 4 accumulation
    assert "dropped" not in report.split("eval buckets")[0]
    assert "train buckets (num_repeats" in report and "400×640 (ar 0.63, image)" in report
    main_cfg = toml.load(tmp_path / "alice_lora" / "4090_wan14b.toml")
    steps = main_cfg["epochs"] * int(report.split("steps: ")[1].split(" per epoch")[0])
    assert f"= {steps}; warm-up {main_cfg['warmup_steps']} steps" in report
    assert main_cfg["warmup_steps"] == max(1, round(steps * 0.05)) < steps
    assert "expected duration: ~" in report


def test_multi_gpu_eval_set_rounding_to_zero_is_refused_up_front(tmp_path):
    one_per_bucket = [(1024, 1024, 1), (832, 1216, 1), (1216, 832, 1), (3024, 4032, 1), (4032, 3024, 1),
                      (512, 1024, 1), (1024, 512, 1)]
    src = make_mixed(tmp_path / "src", one_per_bucket)
    with pytest.raises(DatasetProblem, match=r"rounds down to nothing on 2 GPUs.*--eval-repeats 2"):
        prepare_run(src, tmp_path / "out", trigger="pstch", gpu="h100", model="flux", num_gpus=2, eval_repeats=1)
    assert not (tmp_path / "out").exists()  # refused before anything is written
    run = prepare_run(src, tmp_path / "out", trigger="pstch", gpu="h100", model="flux", num_gpus=2)
    assert run.plan.eval_repeats == 2 and run.plan.eval.dropped == 0 and not run.plan.eval.empty
    assert toml.load(run.eval_toml)["directory"][0]["num_repeats"] == 2


def test_training_set_that_rounds_to_zero_is_refused(tmp_path):
    src = make_mixed(tmp_path / "src", [(1024, 1024, 2), (832, 1216, 2), (1216, 832, 2)])
    with pytest.raises(DatasetProblem, match="Processed dataset was empty"):
        prepare_run(src, tmp_path / "out", trigger="x", gpu="4090", model="flux", num_repeats=1)


def test_videos_get_frame_buckets_that_fit(tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    for i, seconds in enumerate((5.0, 5.0, 3.0, 3.0, 0.5)):
        tiny_mp4(src / f"c{i}.mp4", 832, 480, seconds)
        (src / f"c{i}.txt").write_text("a clip")
    run = prepare_run(src, tmp_path / "out", trigger="pstch", gpu="4090", model="wan14b")
    # 24 GB holds 33-frame buckets at most; 0.5 s = 8 frames at Wan's 16 fps is too short.
    assert run.plan.frame_buckets == (1, 33)
    assert toml.load(run.dataset_toml)["frame_buckets"] == [1, 33]
    assert any("shorter than 17 frames" in w for w in run.warnings)
    big = prepare_run(src, tmp_path / "out80", trigger="pstch", gpu="h100", model="wan14b")
    # 80 GB allows up to 81 frames: 5 s (80 frames) fits 65, 3 s (48 frames) fits 33.
    assert big.plan.frame_buckets == (1, 33, 65)
    assert [(b.frames, b.files) for b in big.plan.train.buckets + big.plan.eval.buckets if b.files] != []


def test_rerun_leaves_no_stale_images(tmp_path):
    src = make_mixed(tmp_path / "src")
    out = tmp_path / "out"
    first = prepare_run(src, out, trigger="pstch", gpu="a100", model="flux")
    gone = first.dataset.train[0]
    (src / gone).unlink()
    (src / gone).with_suffix(".txt").unlink()
    second = prepare_run(src, out, trigger="pstch", gpu="a100", model="flux")
    on_disk = sorted(p.name for p in second.dataset.train_dir.iterdir() if p.suffix == ".jpg")
    assert gone not in on_disk and on_disk == sorted(second.dataset.train)
    assert not (second.dataset.train_dir / gone).with_suffix(".txt").exists()
    foreign = tmp_path / "foreign"
    (foreign / "data" / "train").mkdir(parents=True)
    (foreign / "data" / "train" / "mine.png").write_bytes(b"x")
    with pytest.raises(DatasetProblem, match="not written by prepare"):
        prepare_run(src, foreign, trigger="pstch", gpu="a100", model="flux")


def test_wandb_table_keeps_the_key_out_of_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-123")
    src = make_mixed(tmp_path / "src")
    run = prepare_run(src, tmp_path / "out", trigger="pstch", gpu="a100", model="flux", wandb="alice")
    monitoring = toml.load(run.main_toml)["monitoring"]
    assert monitoring == {"enable_wandb": True, "wandb_api_key": "", "wandb_tracker_name": "pistachio",
                          "wandb_run_name": "alice"}
    assert "secret-key-123" not in run.main_toml.read_text()
    plain = prepare_run(src, tmp_path / "plain", trigger="pstch", gpu="a100", model="flux")
    assert "monitoring" not in toml.load(plain.main_toml)


def test_model_paths_from_a_comfyui_models_folder(tmp_path):
    models = tmp_path / "ComfyUI" / "models"
    (models / "diffusion_models").mkdir(parents=True)
    (models / "diffusion_models" / "wan2.1_t2v_14B_fp16.safetensors").write_bytes(b"x")
    official = tmp_path / "Wan2.1-T2V-14B"
    (official / "google" / "umt5-xxl").mkdir(parents=True)
    (official / "config.json").write_text("{}")
    src = make_mixed(tmp_path / "src")
    run = prepare_run(src, tmp_path / "out", trigger="pstch", gpu="4090", model="wan14b",
                      comfy_models=models, official_model=official)
    model = toml.load(run.main_toml)["model"]
    assert model["transformer_path"] == str(models / "diffusion_models" / "wan2.1_t2v_14B_fp16.safetensors")
    assert model["ckpt_path"] == str(official) and "llm_path" not in model
    assert "CHANGE/ME" not in run.main_toml.read_text()
    missing = " | ".join(run.model_paths.missing)
    assert "umt5_xxl_fp16.safetensors is not in" in missing and "Wan_2.1_ComfyUI_repackaged" in missing
    assert "lacks Wan2.1_VAE.pth" in missing and "--exclude" in missing


def test_gpu_presets_from_nvml_names():
    assert gpu_from_nvml("NVIDIA GeForce RTX 4090", 24 * 1024 ** 3).key == "4090"
    assert gpu_from_nvml("NVIDIA H100 80GB HBM3", 80 * 1024 ** 3).key == "h100"
    assert gpu_from_nvml("NVIDIA L40S", 48 * 1024 ** 3).key == "l40s"
    odd = gpu_from_nvml("NVIDIA RTX 6000 Ada Generation", 48 * 1024 ** 3)
    assert odd.key == "detected" and odd.memory_class == 48
    assert gpu_from_nvml(None, None) is None


def test_watch_a_prepare_folder_finds_its_runs(tmp_path, capsys):
    src = make_mixed(tmp_path / "src")
    run = prepare_run(src, tmp_path / "alice_lora", trigger="pstch", gpu="a100", model="flux")
    state = RunWatcher(run.out_dir).poll()
    assert state.run_dir is None and state.status == "waiting"
    replay_run(run.out_dir / "runs", TrainerConfig(epochs=3, steps_per_epoch=4), lambda s: 0.1 + abs(s - 8) / 100)
    assert RunWatcher(run.out_dir).poll().run_dir == run.out_dir / "runs" / "20260820_10-00-00"
    assert main(["train", "best", str(run.out_dir), "--json"]) == exit_codes.OK
    assert json.loads(capsys.readouterr().out)["best"] == "epoch2"


async def test_prepare_prices_the_run_from_runpod_when_a_key_is_set(tmp_path, monkeypatch, capsys):
    from pistachio_tui.cli.train_commands import run_prepare
    from pistachio_tui.sim.runpod import FakeRunPod

    src = make_mixed(tmp_path / "src")
    async with FakeRunPod() as fake:
        monkeypatch.setenv("RUNPOD_API_URL", fake.url)
        monkeypatch.setenv("RUNPOD_API_KEY", fake.api_key)
        args = __import__("argparse").Namespace(
            dataset=src, trigger="pstch", model="flux", gpu="4090", num_gpus=2, out=tmp_path / "out", epochs=10,
            repeats=None, eval_repeats=None, comfy_models=None, model_path=None, wandb=None, copy=False,
            json=True, config=None)
        assert await run_prepare(args) == exit_codes.OK
    data = json.loads(capsys.readouterr().out)
    assert data["price_per_hour"] == 0.69 and data["num_gpus"] == 2
    assert data["duration_s"] > 0 and data["global_batch"] == 8


def test_sdxl_model_path_is_the_checkpoint_file(tmp_path):
    ckpt = tmp_path / "sd_xl_base_1.0.safetensors"
    ckpt.write_bytes(b"x")
    src = make_mixed(tmp_path / "src")
    run = prepare_run(src, tmp_path / "out", trigger="pstch", gpu="4090", model="sdxl", official_model=ckpt)
    assert toml.load(run.main_toml)["model"]["checkpoint_path"] == str(ckpt)
    assert not any("CHANGE" in w or "set [model]" in w for w in run.warnings)
    gone = prepare_run(src, tmp_path / "out2", trigger="pstch", gpu="4090", model="sdxl",
                       official_model=tmp_path / "nope.safetensors")
    assert any("does not exist" in w for w in gone.warnings)
