"""The spec copy a batch keeps in its output folder reads back as the same batch (same jobs)."""

from __future__ import annotations

import pytest

from pistachio_tui.fleet.resume import RESUME_FILE, load_resume_folder, write_resume_file
from pistachio_tui.fleet.spec import BatchSpec, BatchSpecError, EndpointSpec, expand


def test_every_field_round_trips_and_makes_the_same_jobs(tmp_path):
    (tmp_path / "wf.json").write_text("{}")
    spec = BatchSpec(workflow=tmp_path / "wf.json", count=3, seed_mode="random", batch_seed=123456789,
                     prompts=['a "quoted" [Pony] fox', "line\nbreak"], grid={"cfg": [4.0, 6.5], "sampler": ["euler"]},
                     endpoints=[EndpointSpec("abc"), EndpointSpec("def", 0.00031)], out_dir=tmp_path / "out")
    write_resume_file(spec, tmp_path / "out")
    back = load_resume_folder(tmp_path / "out")
    assert back.out_dir.resolve() == (tmp_path / "out").resolve() and back.name == "out"
    assert (back.workflow, back.prompts, back.grid, back.endpoints) == (
        spec.workflow.resolve(), spec.prompts, spec.grid, spec.endpoints)
    assert [j.id for j in expand(back)] == [j.id for j in expand(spec)]


def test_a_folder_without_a_batch_says_what_to_pick(tmp_path):
    with pytest.raises(BatchSpecError, match=RESUME_FILE):
        load_resume_folder(tmp_path)
