import asyncio
import base64
import json
import time

import httpx
import pytest
import respx
from aiohttp import web

from pistachio_tui.fleet.dispatch import BatchRunner
from pistachio_tui.fleet.serverless import ServerlessTarget
from pistachio_tui.fleet.spec import BatchSpec, expand
from pistachio_tui.fleet.targets import TargetFailed
from tests.fleet.fake_serverless import EXECUTION_ERROR, PNG_1X1, FakeBucket, FakeServerless
from tests.loopback import serve_on_loopback


@pytest.fixture
async def endpoint():
    fake = FakeServerless()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def bucket():
    fake = FakeBucket()
    await fake.start()
    yield fake
    await fake.stop()


def target_for(fake: FakeServerless, **options) -> ServerlessTarget:
    options.setdefault("poll_interval", 0.01)
    return ServerlessTarget(fake.endpoint_id, fake.api_key, base_url=fake.url, **options)


async def run_one(fake: FakeServerless, prompt=None, **options):
    target = target_for(fake, **options)
    try:
        return await target.run(prompt or {"1": {"class_type": "SaveImage", "inputs": {}}})
    finally:
        await target.aclose()


async def test_runs_a_job_through_the_queue_states(endpoint):
    endpoint.job_seconds = 0.1
    seen = []
    target = target_for(endpoint)
    task = asyncio.create_task(target.run({"1": {"class_type": "SaveImage", "inputs": {}}}))
    while not task.done():
        seen += [job["status"] for job in endpoint.jobs.values()]
        await asyncio.sleep(0.01)
    outputs = await task
    await target.aclose()
    assert [(o.name, o.data) for o in outputs] == [("ComfyUI_00001_.png", PNG_1X1)]
    assert endpoint.workflows == [{"1": {"class_type": "SaveImage", "inputs": {}}}]
    assert "IN_PROGRESS" in seen and seen[-1] in ("IN_PROGRESS", "COMPLETED")
    assert target.meter.jobs == 1 and target.meter.execution_s == pytest.approx(0.1)


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


async def test_unreachable_endpoint_is_retryable_after_patience():
    target = ServerlessTarget("ep", "k", base_url="http://127.0.0.1:9", timeout=1, poll_interval=0.01,
                              give_up_after=0.1)
    try:
        with pytest.raises(TargetFailed) as err:
            await target.run({})
    finally:
        await target.aclose()
    assert err.value.retry
    assert "unreachable" in str(err.value)


# -- the key stays with RunPod ------------------------------------------------------------------


async def test_presigned_outputs_are_fetched_without_the_key(bucket):
    endpoint = FakeServerless(bucket=bucket)
    await endpoint.start()
    try:
        outputs = await run_one(endpoint)
    finally:
        await endpoint.stop()
    assert [o.data for o in outputs] == [PNG_1X1]
    assert bucket.gets == 1 and bucket.auth_headers_seen == []


async def test_the_fake_bucket_refuses_a_presigned_url_with_authorization(bucket):
    url = bucket.put("x.png", b"X")
    async with httpx.AsyncClient() as client:
        refused = await client.get(url, headers={"Authorization": "Bearer rpa_TESTKEY"})
        served = await client.get(url)
    assert refused.status_code == 400 and "Only one auth mechanism allowed" in refused.text
    assert served.content == b"X"


async def test_the_key_does_not_follow_a_redirect_to_another_host(bucket):
    """A presigned URL that redirects (S3 does, across regions) reaches the bucket with no key either."""
    seen = []

    async def redirect(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        raise web.HTTPTemporaryRedirect(bucket.put("moved.png", PNG_1X1))

    app = web.Application()
    app.router.add_get("/old.png", redirect)
    runner, old_host = await serve_on_loopback(app)
    endpoint = FakeServerless(handler=lambda job_input: {"images": [
        {"filename": "a.png", "type": "s3_url", "data": f"{old_host}/old.png"}]})
    await endpoint.start()
    try:
        outputs = await run_one(endpoint)
    finally:
        await endpoint.stop()
        await runner.cleanup()
    assert [o.data for o in outputs] == [PNG_1X1]
    assert seen == [None] and bucket.auth_headers_seen == []


@respx.mock
async def test_the_api_client_never_sends_the_key_off_runpod():
    """Even a request the API client is asked to make elsewhere goes out without the key."""
    elsewhere = respx.get("https://api.runpod.ai.attacker.test/x").mock(return_value=httpx.Response(200, json={}))
    runpod = respx.get("https://api.runpod.ai/v2/ep/health").mock(return_value=httpx.Response(200, json={}))
    target = ServerlessTarget("ep", "rpa_SECRET")
    try:
        assert await target.check(set()) is None
        await target._api.get("https://api.runpod.ai.attacker.test/x")
    finally:
        await target.aclose()
    assert runpod.calls.last.request.headers["Authorization"] == "Bearer rpa_SECRET"
    assert "Authorization" not in elsewhere.calls.last.request.headers
    assert runpod.calls.last.request.headers["User-Agent"].startswith("pistachio-tui/")


# -- transient failures while polling -----------------------------------------------------------


async def test_429_waits_for_retry_after_and_keeps_the_job(endpoint):
    endpoint.job_seconds = 0.05
    endpoint.inject(429, retry_after="0.3")
    started = time.monotonic()
    outputs = await run_one(endpoint)
    assert time.monotonic() - started >= 0.3
    assert len(outputs) == 1 and endpoint.submissions == 1 and endpoint.cancels == []


@pytest.mark.parametrize("retry_after", ["nan", "inf", "-3", "soon", ""])
async def test_a_bad_retry_after_falls_back_to_backoff(endpoint, retry_after):
    endpoint.inject(429, retry_after=retry_after, times=2)
    outputs = await run_one(endpoint)
    assert len(outputs) == 1 and endpoint.submissions == 1


async def test_5xx_and_network_blips_are_ridden_out(endpoint):
    endpoint.inject(502)
    endpoint.inject(503)
    blips = []

    class Blip(httpx.AsyncBaseTransport):
        """Drops the connection on the first two /status calls, then lets calls through."""

        def __init__(self) -> None:
            self._real = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request):
            if "/status/" in request.url.path and len(blips) < 2:
                blips.append(request.url.path)
                raise httpx.ReadError("connection reset by peer", request=request)
            return await self._real.handle_async_request(request)

    outputs = await run_one(endpoint, transport=Blip())
    assert len(outputs) == 1 and len(blips) == 2
    assert endpoint.submissions == 1 and endpoint.cancels == []


async def test_a_429_on_submit_is_waited_out_without_a_second_job(endpoint):
    endpoint.inject(429, retry_after="0.05", on="run")
    outputs = await run_one(endpoint)
    assert len(outputs) == 1 and endpoint.submissions == 1


async def test_a_job_given_up_on_is_cancelled_before_it_may_be_resubmitted(endpoint):
    endpoint.job_seconds = 5
    endpoint.inject(502, times=1000)
    with pytest.raises(TargetFailed) as err:
        await run_one(endpoint, give_up_after=0.2)
    assert err.value.retry, "a confirmed cancel lets another target take the job"
    assert [state for _, state in endpoint.cancels] == ["IN_PROGRESS"]
    assert "cancelled" in str(err.value)


async def test_a_job_that_cannot_be_cancelled_is_never_resubmitted(endpoint):
    endpoint.job_seconds = 5
    endpoint.inject(502, times=1000)
    endpoint.inject(503, times=1000, on="cancel")
    with pytest.raises(TargetFailed) as err:
        await run_one(endpoint, give_up_after=0.2)
    assert not err.value.retry
    assert "may still be running" in str(err.value) and "not paid for twice" in str(err.value)


async def test_a_job_lost_by_the_endpoint_may_run_elsewhere(endpoint):
    endpoint.job_seconds = 5
    target = target_for(endpoint)
    task = asyncio.create_task(target.run({}))
    while not endpoint.jobs:
        await asyncio.sleep(0.01)
    endpoint.jobs.clear()
    with pytest.raises(TargetFailed, match="no longer knows job") as err:
        await task
    await target.aclose()
    assert err.value.retry


# -- how jobs end -------------------------------------------------------------------------------


async def test_failed_is_final_and_shows_worker_comfyui_details():
    endpoint = FakeServerless(handler=lambda job_input: dict(EXECUTION_ERROR))
    await endpoint.start()
    try:
        with pytest.raises(TargetFailed) as err:
            await run_one(endpoint)
    finally:
        await endpoint.stop()
    assert not err.value.retry
    assert "Job processing failed" in str(err.value)
    assert "KSampler, Node ID: 3" in str(err.value) and "CUDA out of memory" in str(err.value)
    assert endpoint.submissions == 1


async def test_a_broken_worker_is_not_the_workflows_fault():
    endpoint = FakeServerless(handler=lambda job_input: {
        "error": "ComfyUI server (127.0.0.1:8188) not reachable after multiple retries."})
    await endpoint.start()
    try:
        with pytest.raises(TargetFailed) as err:
            await run_one(endpoint)
    finally:
        await endpoint.stop()
    assert err.value.retry


async def test_a_handler_exception_shows_its_message():
    wrapped = '{"error_type": "<class \'KeyError\'>", "error_message": "\'workflow\'", "error_traceback": "..."}'
    endpoint = FakeServerless(handler=lambda job_input: {"error": wrapped})
    await endpoint.start()
    try:
        with pytest.raises(TargetFailed, match="failed: 'workflow'"):
            await run_one(endpoint)
    finally:
        await endpoint.stop()


async def test_a_failed_batch_job_does_not_take_the_endpoint_down(tmp_path):
    calls = []

    def handler(job_input):
        calls.append(job_input)
        return dict(EXECUTION_ERROR) if len(calls) <= 2 else {"images": [
            {"filename": "x.png", "type": "base64", "data": base64.b64encode(PNG_1X1).decode()}]}

    endpoint = FakeServerless(handler=handler)
    await endpoint.start()
    jobs = expand(BatchSpec(workflow="wf.json", count=4, seed_mode="increment", start_seed=1))
    runner = BatchRunner(jobs, [target_for(endpoint)], tmp_path, lambda job: {"seed": job.seed})
    try:
        result = await runner.run()
    finally:
        await runner.aclose()
        await endpoint.stop()
    assert len(result.failed) == 2 and len(result.records) == 2
    assert result.targets[f"endpoint:{endpoint.endpoint_id}"].down is None
    assert endpoint.submissions == 4


@pytest.mark.parametrize(("output", "expected"), [
    ("just a string", "output that is str"),
    ({"status": "success_no_images", "images": []}, "produced no images"),
    ({"images": [], "errors": ["Error uploading a.png to S3: denied"]}, "Error uploading a.png"),
    ({"images": "nope"}, "'images' that is not a list"),
    ({"images": [{"filename": "a.png"}]}, "image entry without data"),
    ({"videos": [{"filename": "a.mp4"}]}, "output keys: videos"),
    ({"status": "error", "message": "the image does not exist"}, "worker says the image does not exist"),
])
async def test_unexpected_outputs_end_the_job_clearly(output, expected):
    endpoint = FakeServerless(handler=lambda job_input: output)
    await endpoint.start()
    try:
        with pytest.raises(TargetFailed, match=expected) as err:
            await run_one(endpoint)
    finally:
        await endpoint.stop()
    assert not err.value.retry


async def test_older_worker_message_output_is_an_image():
    data = base64.b64encode(PNG_1X1).decode()
    endpoint = FakeServerless(handler=lambda job_input: {"status": "success", "message": data})
    await endpoint.start()
    try:
        outputs = await run_one(endpoint)
    finally:
        await endpoint.stop()
    assert [o.data for o in outputs] == [PNG_1X1]


@respx.mock
async def test_completed_with_images_and_upload_errors_keeps_the_images():
    base = "http://rp.test/v2/ep"
    respx.post(f"{base}/run").mock(return_value=httpx.Response(200, json={"id": "j1"}))
    respx.get(f"{base}/status/j1").mock(return_value=httpx.Response(200, json={
        "status": "COMPLETED", "executionTime": 1500, "delayTime": 200, "output": {"images": [
            {"filename": "b.png", "type": "base64", "data": "data:image/png;base64," + base64.b64encode(b"B").decode()},
        ], "errors": ["Error uploading c.png to S3"]}}))
    target = ServerlessTarget("ep", "k", base_url="http://rp.test", poll_interval=0)
    try:
        outputs = await target.run({})
    finally:
        await target.aclose()
    assert [(o.name, o.data) for o in outputs] == [("b.png", b"B")]
    assert (target.meter.execution_s, target.meter.delay_s) == (1.5, 0.2)


@respx.mock
async def test_non_finite_times_and_worker_counts_count_as_nothing():
    """``executionTime: Infinity`` made the batch's cost "$inf"."""
    base = "http://rp.test/v2/ep"
    health = {"workers": {"idle": float("inf"), "running": float("nan")}}
    respx.get(f"{base}/health").mock(return_value=httpx.Response(200, text=json.dumps(health)))
    respx.post(f"{base}/run").mock(return_value=httpx.Response(200, json={"id": "j1"}))
    respx.get(f"{base}/status/j1").mock(return_value=httpx.Response(200, text=json.dumps({
        "status": "COMPLETED", "executionTime": float("inf"), "delayTime": float("nan"), "output": {"images": [
            {"filename": "b.png", "type": "base64", "data": base64.b64encode(b"B").decode()}]}})))
    target = ServerlessTarget("ep", "k", base_url="http://rp.test", poll_interval=0)
    try:
        assert await target.check(set()) is None
        await target.run({})
    finally:
        await target.aclose()
    assert (target.meter.execution_s, target.meter.delay_s) == (0.0, 0.0)
    assert target.slots >= 1


# -- the endpoint's own settings ----------------------------------------------------------------


async def test_slots_follow_the_endpoints_workers():
    endpoint = FakeServerless(workers=6)
    await endpoint.start()
    target = target_for(endpoint)
    try:
        assert await target.check(set()) is None
    finally:
        await target.aclose()
        await endpoint.stop()
    assert target.slots == 6


async def test_policy_and_input_images_go_with_each_job(endpoint, tmp_path):
    (tmp_path / "cat.png").write_bytes(b"CAT")
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}},
              "2": {"class_type": "LoadImageMask", "inputs": {"image": "on_the_worker.png", "channel": "alpha"}},
              "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    await run_one(endpoint, prompt, execution_timeout_s=120, ttl_s=3600, input_dirs=[tmp_path])
    await run_one(endpoint, {"3": {"class_type": "SaveImage", "inputs": {}}}, input_dirs=[tmp_path])
    assert endpoint.policies == [{"executionTimeout": 120000, "ttl": 3600000}, None]
    assert endpoint.inputs[0]["images"] == [{"name": "cat.png", "image": base64.b64encode(b"CAT").decode()}]
    assert "images" not in endpoint.inputs[1], "a prompt without image loaders sends none"


async def test_cancel_reaches_the_endpoint(endpoint):
    endpoint.job_seconds = 5
    target = target_for(endpoint)
    task = asyncio.create_task(target.run({}))
    while not endpoint.status_calls:  # the target has the job id once it polls
        await asyncio.sleep(0.01)
    await target.cancel()
    with pytest.raises(TargetFailed, match="cancelled"):
        await task
    await target.aclose()
    assert endpoint.purges == 0, "other clients' queued jobs are not purged"


async def test_a_run_torn_down_mid_job_cancels_it_on_the_endpoint(endpoint):
    endpoint.job_seconds = 5
    target = target_for(endpoint)
    task = asyncio.create_task(target.run({}))
    while not endpoint.status_calls:  # the target has the job id once it polls
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await target.aclose()
    assert [state for _, state in endpoint.cancels] == ["IN_PROGRESS"]


# -- acceptance ---------------------------------------------------------------------------------


async def test_a_batch_with_a_429_and_a_502_mid_poll_pays_for_each_job_once(tmp_path):
    endpoint = FakeServerless(job_seconds=0.05, workers=2)
    await endpoint.start()
    jobs = expand(BatchSpec(workflow="wf.json", count=8, seed_mode="increment", start_seed=1))

    def on_event(event):
        if event.kind == "started" and endpoint.status_calls == 0:
            endpoint.inject(429, retry_after="0.1")
            endpoint.inject(502)

    runner = BatchRunner(jobs, [target_for(endpoint)], tmp_path, lambda job: {"seed": job.seed}, on_event=on_event)
    try:
        result = await runner.run()
    finally:
        await runner.aclose()
        await endpoint.stop()
    assert endpoint.faults_left == 0, "the 429 and the 502 were served mid-poll"
    assert result.ok and len(result.records) == 8
    assert all(len(record.files) == 1 for record in result.records)
    assert endpoint.submissions == 8
    assert endpoint.cancels == []
    assert sorted(w["seed"] for w in endpoint.workflows) == list(range(1, 9))


async def test_an_unforeseen_error_ends_the_job_not_the_batch(endpoint, monkeypatch):
    """A bug of ours (here: reading the output raises KeyError) fails the job, never kills a batch worker."""
    async def broken(self, job_id, output):
        raise KeyError("images")

    monkeypatch.setattr(ServerlessTarget, "_outputs", broken)
    with pytest.raises(TargetFailed, match="unexpected KeyError reading its output") as err:
        await run_one(endpoint)
    assert not err.value.retry and endpoint.submissions == 1
