"""Who gets the RunPod key, and how long a Retry-After makes us wait."""

from __future__ import annotations

import httpx
import pytest

from pistachio_tui.runpod.http import RETRY_AFTER_CAP_S, RunPodAuth, backoff_s, retry_after_s


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://api.runpod.ai/v2/ep/status/1", True),
    ("https://api.runpod.io/graphql", True),
    ("https://api.runpod.io/v2/pods", True),
    ("https://rest.runpod.io/v1/pods", True),
    ("http://api.runpod.io/graphql", False),              # never in clear text
    ("https://api.runpod.io:8443/graphql", False),
    ("https://api.runpod.ai.attacker.test/x", False),
    ("https://bucket.s3.us-east-1.amazonaws.com/img.png?X-Amz-Signature=1", False),
    ("https://abc123-8188.proxy.runpod.net/view", False),  # a pod's own server is not RunPod's API
    ("http://127.0.0.1:9000/v2", True),                   # the configured origin (a proxy, a fake)
    ("http://127.0.0.1:9001/v2", False),                  # the same host on another port is another origin
])
def test_the_key_goes_to_runpod_api_origins_only(url, allowed):
    auth = RunPodAuth("rpa_KEY", extra_origins=["http://127.0.0.1:9000/v2"])
    assert auth.allows(httpx.URL(url)) is allowed
    assert "rpa_KEY" not in repr(auth)


@pytest.mark.parametrize(("value", "expected"), [
    ("12", 12.0), ("0", 0.0), ("1.5", 1.5), (None, None), ("", None), ("soon", None),
    ("nan", None), ("NaN", None), ("inf", None), ("-3", None), ("99999", RETRY_AFTER_CAP_S),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
])
def test_retry_after_is_a_finite_number_of_seconds_or_none(value, expected):
    assert retry_after_s(value) == expected


def test_an_http_date_retry_after_counts_from_now():
    assert retry_after_s("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0


def test_backoff_doubles_up_to_its_cap():
    assert [backoff_s(n, base=0.5, cap=3.0) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff_s(10_000, base=1.0, cap=30.0) == 30.0
