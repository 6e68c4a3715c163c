"""Every GraphQL operation Pistachio sends is valid against RunPod's schema, and the fake says no to the rest."""

from __future__ import annotations

import pytest

from pistachio_tui.runpod import queries
from pistachio_tui.runpod.errors import GraphQLError
from pistachio_tui.sim.runpod import schema_errors

OPERATIONS = {
    "PODS": {}, "ACCOUNT": {}, "OVERVIEW": {}, "GPU_TYPES": {},
    "POD_RESUME": {"input": {"podId": "p1", "gpuCount": 1}},
    "POD_STOP": {"input": {"podId": "p1"}},
    "POD_TERMINATE": {"input": {"podId": "p1"}},
    "POD_BID_RESUME": {"input": {"podId": "p1", "bidPerGpu": 0.2, "gpuCount": 1}},
    "POD_TYPE": {"input": {"podId": "p1"}},
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_our_operations_are_valid(name):
    assert schema_errors(getattr(queries, name), OPERATIONS[name]) == []


def test_every_operation_in_queries_is_checked():
    sent = {name for name, value in vars(queries).items()
            if name.isupper() and isinstance(value, str) and value.lstrip().startswith(("query", "mutation"))}
    assert sent == set(OPERATIONS)


@pytest.mark.parametrize(("query", "variables", "reason"), [
    ("query { myself { pods { id gpuUtilization } } }", {}, "Cannot query field 'gpuUtilization' on type 'Pod'"),
    ("query { myself(id: 1) { id } }", {}, "Unknown argument 'id'"),
    ("query { gpuTypes { lowestPrice(input: {gpus: 1}) { minimumBidPrice } } }", {}, "unknown field 'gpus'"),
    ("mutation R($input: PodResumeInput!) { podResume(input: $input) { id } }",
     {"input": {"podId": "p1", "bidPerGpu": 0.2}}, "bidPerGpu"),
    ("mutation R($input: PodResumeInput!) { podResume(input: $input) { id } }", {"input": {}}, "podId"),
    ("query { myself { pods { id } }", {}, "Syntax Error"),
])
def test_the_schema_refuses_what_runpod_refuses(query, variables, reason):
    assert any(reason in error for error in schema_errors(query, variables))


async def test_the_fake_answers_400_with_errors_and_the_client_lists_them(runpod, fake_runpod):
    with pytest.raises(GraphQLError, match="Cannot query field 'bogus'"):
        await runpod.execute("query Bad { myself { bogus } }")
    assert fake_runpod.refused and "bogus" in fake_runpod.refused[0][0]
