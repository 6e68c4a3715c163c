"""validate_prompt reproduces ComfyUI 0.8.0's validation: recorded bodies exactly, plus the other rules."""

from __future__ import annotations

import copy

import pytest

from pistachio_tui.sim.catalog import recorded_object_info
from pistachio_tui.sim.validate import check_prompt, validate_prompt
from tests.conftest import FIXTURES_DIR, load_fixture

OBJECT_INFO = recorded_object_info()
RECORDED = sorted(p.stem for p in FIXTURES_DIR.glob("validation_*.json") if "request" in load_fixture(p.stem))


def save(source: str) -> dict:
    return {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": [source, 0]}}


def empty_image(**overrides) -> dict:
    inputs = {"width": 64, "height": 64, "batch_size": 1, "color": 0, **overrides}
    return {"class_type": "EmptyImage", "inputs": inputs}


def first_error(body: dict, node_id: str) -> dict:
    return body["node_errors"][node_id]["errors"][0]


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_rejections_are_reproduced_exactly(name):
    recorded = load_fixture(name)
    # The recording server had no models at all.
    assert validate_prompt(recorded["request"], OBJECT_INFO, {}) == (recorded["status"], recorded["body"])


def test_every_recorded_rejection_with_a_request_is_covered():
    assert len(RECORDED) == 7


def test_recorded_success_prompt_passes():
    prompt = next(iter(load_fixture("success.history").values()))["prompt"][2]
    assert validate_prompt(prompt, OBJECT_INFO, {}) == (200, {"node_errors": {}})


def test_model_picker_uses_given_models_not_recorded_list():
    request = load_fixture("validation_missing_model")["request"]
    status, body = validate_prompt(request, OBJECT_INFO, {"checkpoints": ["sd_xl_base_1.0.safetensors"]})
    assert status == 200 and body == {"node_errors": {}}


def test_model_picker_lists_available_files_in_the_error():
    request = load_fixture("validation_missing_model")["request"]
    _, body = validate_prompt(request, OBJECT_INFO, {"checkpoints": ["a.safetensors"]})
    error = first_error(body, "4")
    assert error["details"] == "ckpt_name: 'sd_xl_base_1.0.safetensors' not in ['a.safetensors']"
    assert error["extra_info"]["input_config"][0] == ["a.safetensors"]


def test_long_option_lists_are_summarised():
    request = load_fixture("validation_missing_model")["request"]
    files = [f"m{i}.safetensors" for i in range(21)]
    _, body = validate_prompt(request, OBJECT_INFO, {"checkpoints": files})
    error = first_error(body, "4")
    assert error["details"] == "ckpt_name: 'sd_xl_base_1.0.safetensors' not in (list of length 21)"
    assert error["extra_info"]["input_config"] is None


def test_without_models_the_recorded_options_apply():
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}}, "3": save("1")}
    assert validate_prompt(prompt, OBJECT_INFO, None)[0] == 200


def test_new_style_combo_is_checked_against_its_options():
    prompt = {
        "1": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "missing.pth"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["1", 0], "image": ["2", 0]}},
        "4": save("3"),
    }
    status, body = validate_prompt(prompt, OBJECT_INFO, {"upscale_models": ["4x.pth"]})
    assert status == 400
    error = first_error(body, "1")
    assert error["type"] == "value_not_in_list"
    assert error["extra_info"]["input_config"][0] == "COMBO"
    assert error["extra_info"]["input_config"][1]["options"] == ["4x.pth"]
    prompt["1"]["inputs"]["model_name"] = "4x.pth"
    assert validate_prompt(prompt, OBJECT_INFO, {"upscale_models": ["4x.pth"]})[0] == 200


def test_value_below_min():
    status, body = validate_prompt({"1": empty_image(width=0), "3": save("1")}, OBJECT_INFO, {})
    assert status == 400
    error = first_error(body, "1")
    assert error["type"] == "value_smaller_than_min"
    assert error["message"] == "Value 0 smaller than min of 1"
    assert body["node_errors"]["1"]["dependent_outputs"] == ["3"]


def test_numbers_are_converted_like_python():
    outcome = check_prompt({"1": empty_image(width="128", height=64.9), "3": save("1")}, OBJECT_INFO, {})
    assert outcome.status == 200
    assert outcome.prompt["1"]["inputs"]["width"] == 128
    assert outcome.prompt["1"]["inputs"]["height"] == 64


def test_wrapped_list_values_are_unwrapped():
    outcome = check_prompt({"1": empty_image(width={"__value__": 32}), "3": save("1")}, OBJECT_INFO, {})
    assert outcome.status == 200 and outcome.prompt["1"]["inputs"]["width"] == 32


def test_caller_prompt_is_not_modified():
    prompt = {"1": empty_image(width="128"), "3": save("1")}
    before = copy.deepcopy(prompt)
    check_prompt(prompt, OBJECT_INFO, {})
    assert prompt == before


def test_link_of_wrong_type():
    prompt = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
              "3": save("1")}
    status, body = validate_prompt(prompt, OBJECT_INFO, {})
    assert status == 400
    error = first_error(body, "3")
    assert error["type"] == "return_type_mismatch"
    assert error["details"] == "images, received_type(LATENT) mismatch input_type(IMAGE)"
    assert error["extra_info"]["linked_node"] == ["1", 0]
    assert body["error"]["details"] == f"{error['message']}: {error['details']}"


def test_link_that_is_not_a_pair():
    prompt = {"1": empty_image(), "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x",
                                                                          "images": ["1", 0, 0]}}}
    error = first_error(validate_prompt(prompt, OBJECT_INFO, {})[1], "3")
    assert error["type"] == "bad_linked_input"
    assert error["message"] == "Bad linked input, must be a length-2 list of [node_id, slot_index]"


def test_link_to_missing_output_slot_raises_like_the_server():
    _, body = validate_prompt({"1": empty_image(), "3": {"class_type": "SaveImage", "inputs": {
        "filename_prefix": "x", "images": ["1", 5]}}}, OBJECT_INFO, {})
    error = first_error(body, "3")
    assert error["type"] == "exception_during_validation"
    assert error["details"] == "tuple index out of range"
    assert error["extra_info"]["exception_type"] == "IndexError"
    assert "received_type = r[val[1]]" in error["extra_info"]["traceback"][1]


def test_error_upstream_of_upstream_is_reported_as_inner_exception():
    prompt = {"2": {"class_type": "ImageInvert", "inputs": {"image": ["77", 0]}}, "3": save("2")}
    status, body = validate_prompt(prompt, OBJECT_INFO, {})
    assert status == 400
    error = first_error(body, "2")
    assert error["type"] == "exception_during_inner_validation"
    assert error["details"] == "'77'"
    # Upstream files it under the failing node, named by the input that linked to it.
    assert error["extra_info"]["input_name"] == "images"
    assert len(error["extra_info"]["traceback"]) == 2
    # The output itself carries no reason of its own, as upstream leaves it.
    assert "3" not in body["node_errors"] and body["error"]["details"] == ""


def test_upstream_errors_name_every_dependent_output():
    prompt = {"1": empty_image(width="wide"), "3": save("1"), "4": save("1")}
    _, body = validate_prompt(prompt, OBJECT_INFO, {})
    assert body["node_errors"]["1"]["dependent_outputs"] == ["3", "4"]


def test_one_good_output_is_enough():
    prompt = {"1": empty_image(), "2": empty_image(width="wide"), "3": save("1"), "4": save("2")}
    outcome = check_prompt(prompt, OBJECT_INFO, {})
    assert outcome.status == 200
    assert outcome.outputs == ["3"]
    assert list(outcome.body["node_errors"]) == ["2"]


def test_missing_optional_input_is_fine_and_hidden_inputs_are_ignored():
    prompt = {"1": empty_image(), "3": {"class_type": "SaveImage", "inputs": {
        "filename_prefix": "x", "images": ["1", 0], "prompt": "ignored"}}}
    assert validate_prompt(prompt, OBJECT_INFO, {})[0] == 200


def test_wildcard_types_link_to_anything():
    info = copy.deepcopy(OBJECT_INFO)
    info["AnySource"] = {"input": {"required": {}}, "output": ["*"], "output_node": False}
    prompt = {"1": {"class_type": "AnySource", "inputs": {}}, "3": save("1")}
    assert validate_prompt(prompt, info, {})[0] == 200


def test_comma_separated_types_overlap():
    info = copy.deepcopy(OBJECT_INFO)
    info["Either"] = {"input": {"required": {}}, "output": ["MASK,IMAGE"], "output_node": False}
    assert validate_prompt({"1": {"class_type": "Either", "inputs": {}}, "3": save("1")}, info, {})[0] == 200


def test_missing_class_type_property():
    status, body = validate_prompt({"1": {"inputs": {}}}, OBJECT_INFO, {})
    assert status == 400
    assert body["error"]["message"] == "Cannot execute because a node is missing the class_type property."


def test_missing_inputs_property_is_an_exception_like_upstream():
    _, body = validate_prompt({"3": {"class_type": "SaveImage"}}, OBJECT_INFO, {})
    error = first_error(body, "3")
    assert error["type"] == "exception_during_validation" and error["details"] == "'inputs'"


def test_partial_execution_targets_limit_outputs():
    prompt = {"1": empty_image(), "2": empty_image(width="wide"), "3": save("1"), "4": save("2")}
    outcome = check_prompt(prompt, OBJECT_INFO, {}, partial_execution_targets=["3"])
    assert outcome.status == 200 and outcome.outputs == ["3"] and outcome.body["node_errors"] == {}


@pytest.mark.parametrize("prompt", [[1, 2], {"1": "not a node"}, "text"])
def test_malformed_prompt_raises(prompt):
    with pytest.raises(ValueError):
        validate_prompt(prompt, OBJECT_INFO, {})


def test_pickers_of_unknown_loaders_follow_the_folder_holding_their_files():
    info = copy.deepcopy(OBJECT_INFO)
    info["GGUFLoader"] = {"input": {"required": {"gguf": [["old.gguf"], {}]}}, "output": ["IMAGE"],
                          "output_node": False}
    prompt = {"1": {"class_type": "GGUFLoader", "inputs": {"gguf": "new.gguf"}}, "3": save("1")}
    assert validate_prompt(prompt, info, {"unet": ["old.gguf", "new.gguf"]})[0] == 200
    assert validate_prompt(prompt, info, {"unet": ["other.gguf"]})[0] == 400
