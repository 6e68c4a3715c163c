"""v3 dynamic inputs (autogrow, dynamic combo) validate as ComfyUI 0.8.0 does: the prompt carries
``<input>.<name>`` keys and only the slots or option inputs it uses are checked."""

from __future__ import annotations

from pistachio_tui.sim.catalog import recorded_object_info
from pistachio_tui.sim.validate import finalized_inputs, validate_prompt

OBJECT_INFO = recorded_object_info()


def empty_image(node_id: str = "1") -> dict:
    return {node_id: {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}


def batch_then_save(images: dict) -> dict:
    return {
        **empty_image(),
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "BatchImagesNode", "inputs": images},
        "4": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["3", 0]}},
    }


def errors_of(body: dict, node_id: str) -> list[tuple[str, str]]:
    return [(e["type"], e["details"]) for e in body["node_errors"][node_id]["errors"]]


def test_autogrow_slots_are_named_inputs_and_checked_by_type():
    ok = batch_then_save({"images.image0": ["1", 0], "images.image1": ["1", 0], "images.image2": ["1", 0]})
    assert validate_prompt(ok, OBJECT_INFO, {}) == (200, {"node_errors": {}})
    status, body = validate_prompt(batch_then_save({"images.image0": ["1", 0], "images.image1": ["2", 0]}),
                                   OBJECT_INFO, {})
    assert status == 400
    assert errors_of(body, "3") == [
        ("return_type_mismatch", "images.image1, received_type(LATENT) mismatch input_type(IMAGE)")]
    assert body["node_errors"]["3"]["errors"][0]["extra_info"]["input_name"] == "images.image1"


def test_autogrow_slots_absent_from_the_prompt_are_not_required():
    # 0.8.0 expands an autogrow input only into the slots the prompt uses, so even
    # fewer than ``min`` of them is not a validation error.
    assert validate_prompt(batch_then_save({"images.image0": ["1", 0]}), OBJECT_INFO, {})[0] == 200
    assert validate_prompt(batch_then_save({}), OBJECT_INFO, {})[0] == 200


def test_autogrow_with_named_slots():
    spec = OBJECT_INFO["WanReferenceVideoApi"]["input"]["required"]["reference_videos"]
    grown = finalized_inputs({"required": {"reference_videos": spec}},
                             {"reference_videos.character2": ["9", 0], "reference_videos.character1": ["9", 0]})
    assert grown == [("reference_videos.character1", "required", ["VIDEO", {}]),
                     ("reference_videos.character2", "optional", ["VIDEO", {}])]


def resize(resize_type: str, **option_inputs) -> dict:
    inputs = {"input": ["1", 0], "resize_type": resize_type, "scale_method": "area",
              **{f"resize_type.{k}": v for k, v in option_inputs.items()}}
    return {**empty_image(), "2": {"class_type": "ResizeImageMaskNode", "inputs": inputs},
            "3": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["2", 0]}}}


def test_dynamic_combo_checks_the_inputs_of_the_chosen_option():
    assert validate_prompt(resize("scale by multiplier", multiplier=2.0), OBJECT_INFO, {})[0] == 200
    assert validate_prompt(resize("scale dimensions", width=64, height=32, crop="center"), OBJECT_INFO, {})[0] == 200
    status, body = validate_prompt(resize("scale by multiplier", multiplier=100.0), OBJECT_INFO, {})
    assert status == 400 and errors_of(body, "2") == [("value_bigger_than_max", "resize_type.multiplier")]
    status, body = validate_prompt(resize("scale dimensions", width=64, crop="sideways"), OBJECT_INFO, {})
    assert sorted(errors_of(body, "2")) == [
        ("required_input_missing", "resize_type.height"),
        ("value_not_in_list", "resize_type.crop: 'sideways' not in ['disabled', 'center']"),
    ]


def test_dynamic_combo_inputs_of_other_options_are_ignored():
    assert validate_prompt(resize("scale width", width=64, multiplier=-5), OBJECT_INFO, {})[0] == 200


def test_an_option_list_output_type_is_checked_not_a_crash():
    # Some custom nodes declare an output type that is a list of options.
    object_info = {**OBJECT_INFO, "SamplerPicker": {
        "input": {"required": {}}, "input_order": {"required": []}, "output": [["euler", "ddim"]],
        "output_node": False, "name": "SamplerPicker"}}
    prompt = {"1": {"class_type": "SamplerPicker", "inputs": {}},
              "2": {"class_type": "KSampler", "inputs": {"sampler_name": ["1", 0]}},
              "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}}}
    status, body = validate_prompt(prompt, object_info, {})
    # KSampler lists its samplers old-style, as the type itself: a different list does not match.
    assert status == 400 and ("return_type_mismatch", "sampler_name, received_type(['euler', 'ddim']) mismatch "
                              f"input_type({OBJECT_INFO['KSampler']['input']['required']['sampler_name'][0]})") \
        in errors_of(body, "2")
    prompt["2"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": ["1", 0]}}
    assert validate_prompt(prompt, object_info, {})[0] == 200
