"""Model candidates: workflow metadata, the Manager's model list, Hugging Face (mocked transport)."""

from __future__ import annotations

import httpx2
import huggingface_hub
import pytest
from huggingface_hub.utils import _http as hf_http

from pistachio_tui.fix.models_search import (
    ModelCandidate,
    best_exact,
    find_candidates,
    from_model_list,
    parse_size,
    rank,
)
from pistachio_tui.workflow.deps import ModelNeed


def need(name, folder=None, url=None):
    return ModelNeed(name, folder, "1", "x", url, False, False)


def test_manager_model_list_gives_url_size_and_top_folder():
    [c] = from_model_list(need("4x-UltraSharp.pth", "upscale_models"))
    assert c.folder == "upscale_models" and c.size == 67 * 1024**2
    assert c.url.endswith("/4x-UltraSharp.pth")
    [sdxl] = from_model_list(need("sd_xl_base_1.0.safetensors", "checkpoints"))
    assert sdxl.folder == "checkpoints"


def test_parse_size():
    assert parse_size("4.71MB") == int(4.71 * 1024**2)
    assert parse_size("6.94GB") == int(6.94 * 1024**3)
    assert parse_size("n/a") is None


def test_rank_exact_then_folder_then_size():
    n = need("a.safetensors", "loras")
    cands = [
        ModelCandidate("b.safetensors", "loras", "u1", "huggingface", size=1),
        ModelCandidate("a.safetensors", "checkpoints", "u2", "manager", size=1),
        ModelCandidate("a.safetensors", "loras", "u3", "huggingface"),
        ModelCandidate("a.safetensors", "loras", "u4", "huggingface", size=5),
    ]
    assert [c.url for c in rank(n, cands)] == ["u4", "u3", "u2", "u1"]
    assert best_exact(n, rank(n, cands)).url == "u4"


def test_the_workflows_own_address_outranks_a_listed_size():
    n = need("a.safetensors", "loras")
    cands = [ModelCandidate("a.safetensors", "loras", "listed", "manager", size=5),
             ModelCandidate("a.safetensors", "loras", "authors", "workflow")]
    assert [c.url for c in rank(n, cands)] == ["authors", "listed"]


@pytest.fixture
def hf_transport():
    """Routes huggingface_hub's own HTTP client to a handler (its transport layer)."""
    calls = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        path = request.url.path
        if path == "/api/models":
            return httpx2.Response(200, json=[{"id": "acme/upscalers", "modelId": "acme/upscalers"}])
        if path.startswith("/api/models/acme/upscalers"):
            return httpx2.Response(200, json={
                "id": "acme/upscalers", "gated": "manual", "tags": ["license:apache-2.0"],
                "siblings": [
                    {"rfilename": "models/4x-Foo.pth", "size": 1234, "lfs": {"sha256": "ab" * 32, "size": 1234, "pointerSize": 130}},
                    {"rfilename": "README.md", "size": 10},
                ],
            })
        return httpx2.Response(404, json={"error": "not found"})

    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(handler)))
    hf_http.close_session()
    yield calls
    huggingface_hub.set_client_factory(hf_http.default_client_factory)
    hf_http.close_session()


async def test_huggingface_search_finds_exact_file_with_metadata(hf_transport):
    n = need("4x-Foo.pth", "upscale_models")
    cands = await find_candidates(n, token="hf_x")
    [c] = cands
    assert c.source == "huggingface" and c.repo == "acme/upscalers"
    assert c.url == "https://huggingface.co/acme/upscalers/resolve/main/models/4x-Foo.pth"
    assert c.size == 1234 and c.sha256 == "ab" * 32 and c.gated and c.licence == "apache-2.0"
    assert c.folder == "upscale_models"
    [search] = [r for r in hf_transport if r.url.path == "/api/models"]
    assert search.url.params["search"] == "4x-Foo"


async def test_hf_not_asked_when_workflow_has_the_file(hf_transport):
    n = need("x.safetensors", "loras", url="http://files.test/x.safetensors")
    cands = await find_candidates(n)
    assert [c.source for c in cands] == ["workflow"]
    assert not [r for r in hf_transport if r.url.path.startswith("/api/models")]


async def test_hf_failure_is_no_result(hf_transport):
    huggingface_hub.set_client_factory(
        lambda: httpx2.Client(transport=httpx2.MockTransport(lambda r: httpx2.Response(401, json={"error": "Invalid credentials"}))))
    hf_http.close_session()
    assert await find_candidates(need("nothing-known.safetensors", "loras")) == []

