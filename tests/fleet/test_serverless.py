import asyncio
import base64

import httpx
import pytest
import respx

from pistachio_tui.fleet.serverless import ServerlessTarget
from pistachio_tui.fleet.targets import TargetFailed
from tests.fleet.fake_serverless import PNG_1X1, FakeServerless


@pytest.fixture
async def endpoint():
    fake = FakeServerless()
    await fake.start()
    yield fake
    await fake.stop()


async def test_runs_a_job_and_decodes_outputs(endpoint):
    target = ServerlessTarget(endpoint.endpoint_id, endpoint.api_key, base_url=endpoint.url, poll_interval=0.01)
    try:
        assert await target.check({"KSampler"}) is None
        outputs = await target.run({"1": {"class_type": "SaveImage", "inputs": {}}})
    finally:
        await target.aclose()
    assert [(o.name, o.data) for o in outputs] == [("ComfyUI_00001_.png", PNG_1X1)]
    assert endpoint.workflows == [{"1": {"class_type": "SaveImage", "inputs": {}}}]


async def test_wrong_key_is_not_retried_and_not_shown(endpoint):
    target = ServerlessTarget(endpoint.endpoint_id, "rpa_WRONGKEY", base_url=endpoint.url)
    try:
        with pytest.raises(TargetFailed) as err:
            await target.run({})
    finally:
        await target.aclose()
    assert not err.value.retry
    assert "RUNPOD_API_KEY" in str(err.value)
    assert "WRONGKEY" not in str(err.value) + repr(target)


async def test_unreachable_endpoint_is_retryable():
    target = ServerlessTarget("ep", "k", base_url="http://127.0.0.1:9", timeout=1)
    try:
        with pytest.raises(TargetFailed) as err:
            await target.run({})
    finally:
        await target.aclose()
    assert err.value.retry
    assert "unreachable" in str(err.value)


@respx.mock
async def test_failed_job_and_url_outputs():
    base = "http://rp.test/v2/ep"
    respx.post(f"{base}/run").mock(side_effect=[httpx.Response(200, json={"id": "j1"}),
                                                 httpx.Response(200, json={"id": "j2"})])
    respx.get(f"{base}/status/j1").mock(return_value=httpx.Response(200, json={
        "status": "FAILED", "error": "CUDA out of memory"}))
    respx.get(f"{base}/status/j2").mock(return_value=httpx.Response(200, json={
        "status": "COMPLETED", "output": {"images": [
            {"filename": "a.png", "type": "s3_url", "data": "http://bucket.test/a.png"},
            {"filename": "b.png", "type": "base64", "data": "data:image/png;base64," + base64.b64encode(b"B").decode()},
        ]}}))
    respx.get("http://bucket.test/a.png").mock(return_value=httpx.Response(200, content=b"A"))
    target = ServerlessTarget("ep", "k", base_url="http://rp.test", poll_interval=0)
    try:
        with pytest.raises(TargetFailed, match="failed: CUDA out of memory"):
            await target.run({})
        outputs = await target.run({})
    finally:
        await target.aclose()
    assert [(o.name, o.data) for o in outputs] == [("a.png", b"A"), ("b.png", b"B")]


async def test_cancel_reaches_the_endpoint(endpoint):
    endpoint.job_seconds = 5
    target = ServerlessTarget(endpoint.endpoint_id, endpoint.api_key, base_url=endpoint.url, poll_interval=0.01)
    task = asyncio.create_task(target.run({}))
    while not endpoint.jobs:
        await asyncio.sleep(0.01)
    await target.cancel()
    with pytest.raises(TargetFailed, match="cancelled"):
        await task
    await target.aclose()
