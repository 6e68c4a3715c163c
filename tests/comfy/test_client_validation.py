"""POST /prompt rejections: every recorded validation shape parses into a ValidationReport."""

from __future__ import annotations

import pytest
import respx

from pistachio_tui.comfy.client import ComfyClient
from pistachio_tui.comfy.errors import PromptRejected, ServerError
from tests.comfy.recorded import BASE, replay
from tests.conftest import load_fixture


async def rejection(name: str) -> PromptRejected:
    with respx.mock() as router:
        replay(router, "POST", "/prompt", name)
        async with ComfyClient(BASE) as client:
            with pytest.raises(PromptRejected) as caught:
                await client.submit(load_fixture(name)["request"])
    return caught.value


async def test_missing_model_is_value_not_in_list_with_allowed_values():
    exc = await rejection("validation_missing_model")
    report = exc.report
    assert report.error_type == "prompt_outputs_failed_validation"
    assert report.message == "Prompt outputs failed validation"
    [node] = report.node_errors
    assert (node.node_id, node.class_type, node.dependent_outputs) == ("4", "CheckpointLoaderSimple", ["9"])
    [missing] = report.missing_models()
    assert missing.input_name == "ckpt_name"
    assert missing.received_value == "sd_xl_base_1.0.safetensors"
    assert missing.allowed == []
    assert (missing.node_id, missing.class_type) == ("4", "CheckpointLoaderSimple")
    assert report.missing_node_types() == []
    assert "node 4 (CheckpointLoaderSimple) input 'ckpt_name'" in exc.message
    assert "'sd_xl_base_1.0.safetensors'" in exc.message


async def test_missing_node_class_is_named_from_the_message():
    report = (await rejection("validation_missing_node")).report
    assert report.error_type == "invalid_prompt"
    assert report.node_errors == []
    assert report.missing_node_types() == ["UltimateSDUpscale"]
    assert report.details == "Node ID '#10'"
    assert report.missing_models() == []


async def test_bad_value_type_keeps_received_value():
    report = (await rejection("validation_bad_value")).report
    [error] = report.node_errors[0].errors
    assert error.type == "invalid_input_type"
    assert (error.input_name, error.received_value, error.allowed) == ("width", "wide", None)
    assert error.extra_info["exception_message"] == "invalid literal for int() with base 10: 'wide'"
    assert report.describe()[1] == ("node 1 (EmptyImage) input 'width': Failed to convert an input value to a "
                                    "INT value; received 'wide'")


async def test_missing_required_input():
    report = (await rejection("validation_missing_input")).report
    [error] = report.node_errors[0].errors
    assert (error.type, error.input_name, error.received_value) == ("required_input_missing", "width", None)
    assert report.describe()[1] == "node 1 (EmptyImage) input 'width': Required input is missing"


async def test_value_above_max():
    report = (await rejection("validation_out_of_range")).report
    [error] = report.node_errors[0].errors
    assert error.type == "value_bigger_than_max"
    assert error.received_value == 99999999
    assert error.extra_info["input_config"][1]["max"] == 16384
    assert "bigger than max of 16384; received 99999999" in report.describe()[1]


async def test_no_outputs():
    report = (await rejection("validation_no_outputs")).report
    assert (report.error_type, report.message, report.node_errors) == ("prompt_no_outputs", "Prompt has no outputs", [])
    assert report.describe() == ["Prompt has no outputs"]


async def test_link_to_missing_node():
    report = (await rejection("validation_bad_link")).report
    [node] = report.node_errors
    [error] = node.errors
    assert (node.node_id, node.class_type) == ("3", "SaveImage")
    assert error.type == "exception_during_validation" and error.details == "'77'"
    assert error.extra_info["exception_type"] == "KeyError"
    assert report.describe()[1] == "node 3 (SaveImage): Exception when validating node ('77')"


async def test_malformed_body_is_a_server_error_with_the_plain_body():
    with respx.mock() as router:
        replay(router, "POST", "/prompt", "validation_malformed_body")
        async with ComfyClient(BASE) as client:
            with pytest.raises(ServerError) as caught:
                await client.submit({"bogus": 1})
    assert caught.value.status == 500
    assert caught.value.body == "500 Internal Server Error\n\nServer got itself in trouble"
    assert "Server got itself in trouble" in caught.value.message
