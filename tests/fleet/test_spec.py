import pytest
from hypothesis import given
from hypothesis import strategies as st

from pistachio_tui.fleet.spec import (
    BatchSpec,
    BatchSpecError,
    expand,
    load_batch_file,
    parse_grid_flag,
    workflow_seed,
)
from pistachio_tui.workflow.seeds import SEED_MAX


def spec(**kw):
    return BatchSpec(workflow="wf.json", **kw)


def test_count_with_increment_seeds():
    jobs = expand(spec(count=4, seed_mode="increment", start_seed=100))
    assert [j.seed for j in jobs] == [100, 101, 102, 103]
    assert len({j.id for j in jobs}) == 4


def test_fixed_seed_keeps_workflow_seed_when_none_given():
    assert [j.seed for j in expand(spec(count=2, seed_mode="fixed"))] == [None, None]
    assert [j.seed for j in expand(spec(count=2, seed_mode="fixed"), base_seed=42)] == [42, 42]
    assert [j.seed for j in expand(spec(count=2, seed_mode="fixed", start_seed=7), base_seed=42)] == [7, 7]


def test_increment_without_start_seed_counts_up_from_the_workflows_seed():
    jobs = expand(spec(count=4, seed_mode="increment"), base_seed=SEED_MAX - 2)
    assert [j.seed for j in jobs] == [SEED_MAX - 2, SEED_MAX - 1, 0, 1]
    assert [j.seed for j in expand(spec(count=2, seed_mode="increment", prompts=["a", "b"]), base_seed=5)] == [
        5, 6, 5, 6]


def test_the_workflows_seed_is_its_first_samplers():
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}},
              "3": {"class_type": "KSampler", "inputs": {"seed": 1234, "steps": 20, "model": ["1", 0]}}}
    assert workflow_seed(prompt) == 1234
    assert workflow_seed({"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}) is None


def test_expansion_is_stable_across_calls():
    a = expand(spec(count=3, prompts=["a {red|green|blue} cat"], grid={"cfg": [4, 7]}, batch_seed=5))
    b = expand(spec(count=3, prompts=["a {red|green|blue} cat"], grid={"cfg": [4, 7]}, batch_seed=5))
    assert a == b
    assert len(a) == 6
    assert {j.params["cfg"] for j in a} == {4, 7}
    assert all(j.prompt_text in {"a red cat", "a green cat", "a blue cat"} for j in a)


def test_different_batch_seed_gives_different_random_seeds():
    assert [j.seed for j in expand(spec(count=3, batch_seed=1))] != [j.seed for j in expand(spec(count=3, batch_seed=2))]


def test_grid_is_a_product():
    jobs = expand(spec(grid={"cfg": [4, 5], "steps": [10, 20, 30]}))
    assert sorted((j.params["cfg"], j.params["steps"]) for j in jobs) == [
        (c, s) for c in (4, 5) for s in (10, 20, 30)
    ]


def test_wildcard_files(tmp_path):
    (tmp_path / "colour.txt").write_text("# colours\nteal\n\nochre {light|dark}\n")
    jobs = expand(spec(count=20, prompts=["__colour__ coat"], wildcard_dir=tmp_path))
    texts = {j.prompt_text for j in jobs}
    assert texts <= {"teal coat", "ochre light coat", "ochre dark coat"}
    assert len(texts) > 1


def test_wildcard_escaping_the_folder_is_refused(tmp_path):
    with pytest.raises(BatchSpecError, match="outside"):
        expand(spec(prompts=["__../secret__"], wildcard_dir=tmp_path / "w"))


def test_missing_wildcard_folder_is_explained():
    with pytest.raises(BatchSpecError, match="no wildcard folder"):
        expand(spec(prompts=["__colour__"]))


@pytest.mark.parametrize("flag, expected", [("cfg=4,5.5,7", ("cfg", [4, 5.5, 7])),
                                            ("sampler=euler,dpmpp_2m", ("sampler", ["euler", "dpmpp_2m"]))])
def test_grid_flag(flag, expected):
    assert parse_grid_flag(flag) == expected


@pytest.mark.parametrize("flag", ["cfg", "=1,2", "cfg="])
def test_bad_grid_flag(flag):
    with pytest.raises(BatchSpecError, match="NAME=V1"):
        parse_grid_flag(flag)


def test_bad_spec_values():
    with pytest.raises(BatchSpecError, match="seed mode"):
        spec(seed_mode="sometimes")
    with pytest.raises(BatchSpecError, match="count"):
        spec(count=0)


def test_batch_file(tmp_path):
    (tmp_path / "prompts.txt").write_text("a cat\n# skip\n\na dog\n")
    path = tmp_path / "batch.toml"
    path.write_text('workflow = "wf.json"\ncount = 2\nseed_mode = "increment"\nstart_seed = 9\n'
                    'prompts_file = "prompts.txt"\n[grid]\ncfg = [4.0, 6.0]\n')
    loaded = load_batch_file(path)
    assert loaded.workflow == tmp_path / "wf.json"
    assert loaded.prompts == ["a cat", "a dog"]
    assert len(expand(loaded)) == 2 * 2 * 2


def test_broken_batch_file_names_the_line(tmp_path):
    path = tmp_path / "batch.toml"
    path.write_text('workflow = "wf.json"\ncount = = 2\n')
    with pytest.raises(BatchSpecError, match="line 2"):
        load_batch_file(path)


@given(count=st.integers(1, 20), start=st.integers(0, SEED_MAX - 1), batch_seed=st.integers(0, 10**6))
def test_ids_unique_and_seeds_in_range(count, start, batch_seed):
    for mode in ("random", "increment", "fixed"):
        jobs = expand(spec(count=count, seed_mode=mode, start_seed=start, batch_seed=batch_seed))
        assert len({j.id for j in jobs}) == count
        assert all(0 <= j.seed < SEED_MAX for j in jobs)
