"""Caption review: flags, edits in place, an external captioner on the gaps."""

from __future__ import annotations

import json
import sys

from PIL import Image

from pistachio_tui.cli import exit_codes, main
from pistachio_tui.training.captions import review_captions, run_captioner


def dataset(folder):
    folder.mkdir()
    for name, caption in [("a.png", "pstch, a red car"), ("b.png", "a red car"), ("c.png", "A red car"),
                          ("d.png", ""), ("e.png", None), ("f.jpg", "pstch standing by the sea")]:
        Image.new("RGB", (64, 64)).save(folder / name)
        if caption is not None:
            (folder / name).with_suffix(".txt").write_text(caption)
    return folder


def test_review_flags_every_kind_of_problem(tmp_path):
    review = review_captions(dataset(tmp_path / "ds"), "pstch")
    flags = {e.name: e.flags for e in review.entries}
    assert flags["a.png"] == []
    assert flags["b.png"] == ["no trigger word", "duplicate caption (same as c.png)"]
    assert flags["d.png"] == ["empty caption"] and flags["e.png"] == ["missing caption"]
    assert flags["f.jpg"] == []
    assert review.missing == ["e.png"] and review.trigger_problem is None
    assert "cat" in review_captions(tmp_path / "ds", "cat").trigger_problem


def test_captioner_fills_the_gaps_with_progress(tmp_path):
    folder = dataset(tmp_path / "ds")
    script = tmp_path / "cap.py"
    script.write_text("import sys, pathlib\nname = pathlib.Path(sys.argv[1]).stem\n"
                      "print(f'a photo of {name}') if name != 'x' else sys.exit(3)\n")
    Image.new("RGB", (64, 64)).save(folder / "x.png")
    seen = []
    results = run_captioner(folder, f"{sys.executable} {script} {{image}}", ["e.png", "x.png"], trigger="pstch",
                            on_progress=lambda *a: seen.append(a))
    assert results["e.png"] == "pstch, a photo of e" and results["x.png"].startswith("error: exit 3")
    assert (folder / "e.txt").read_text() == "pstch, a photo of e\n" and not (folder / "x.txt").exists()
    assert [(d, t, n) for d, t, n, _ in seen] == [(1, 2, "e.png"), (2, 2, "x.png")]


def test_cli_edit_in_place_and_json(tmp_path, capsys):
    folder = dataset(tmp_path / "ds")
    code = main(["train", "captions", str(folder), "--trigger", "pstch", "--set", "d.png=a blue boat",
                 "--set", "e.png=pstch on a bike", "--set", "b.png=a green car", "--set", "c.png=a yellow car",
                 "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == exit_codes.OK
    assert {e["name"]: e["caption"] for e in data["entries"]}["d.png"] == "pstch, a blue boat"
    assert all(not e["flags"] for e in data["entries"])
    assert main(["train", "captions", str(folder), "--trigger", "man"]) == exit_codes.REJECTED
    assert "everyday word" in capsys.readouterr().out
