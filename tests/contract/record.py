"""Record what a real ComfyUI sends for the contract cases into ``tests/fixtures/comfyui-0.8.0/contract``.

    python -m tests.contract.record http://127.0.0.1:8188

Each file is ``{"request", "status", "headers", "body"}`` or, for websocket
traces, a list of ``{"client", "msg"}`` (binary frames as their first bytes).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.contract.prompts import quick_prompt, slow_prompt

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui-0.8.0" / "contract"
_KEPT_HEADERS = ("content-type", "server", "allow")


def answer(request: str, response: httpx.Response) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    headers = {k.lower(): v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
    return {"request": request, "status": response.status_code, "headers": headers, "body": body}


def save(name: str, data: Any) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")


async def watch(ws: Any, client: str, into: list[dict[str, Any]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            raw = await asyncio.wait_for(ws.recv(), 0.2)
        except TimeoutError:
            continue
        msg = json.loads(raw) if isinstance(raw, str) else {"binary": raw[:8].hex()}
        into.append({"client": client, "msg": msg})


async def wait_history(http: httpx.AsyncClient, prompt_id: str) -> None:
    for _ in range(600):
        if (await http.get(f"/history/{prompt_id}")).json():
            return
        await asyncio.sleep(0.1)


async def trace(url: str, body: dict[str, Any], me: str) -> tuple[str, list[dict[str, Any]]]:
    """Queue ``body`` while ``me`` and a bystander listen; the prompt id and both sockets' messages."""
    ws_base = url.replace("http", "ws", 1) + "/ws?clientId="
    messages: list[dict[str, Any]] = []
    stop = asyncio.Event()
    async with websockets.connect(ws_base + me) as mine, \
            websockets.connect(ws_base + "bystander-" + uuid.uuid4().hex[:6]) as other, \
            httpx.AsyncClient(base_url=url, timeout=30) as http:
        await mine.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
        tasks = [asyncio.create_task(watch(mine, "submitter", messages, stop)),
                 asyncio.create_task(watch(other, "bystander", messages, stop))]
        await asyncio.sleep(0.3)
        prompt_id = (await http.post("/prompt", json=body)).json()["prompt_id"]
        await wait_history(http, prompt_id)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
    return prompt_id, messages


async def answers(url: str, done: str, me: str) -> dict[str, dict[str, Any]]:
    """The REST answers of the contract cases, by file name; ``done`` is a finished prompt."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        return {
            "jobs_list": answer("GET /api/jobs?limit=2", await http.get("/api/jobs", params={"limit": 2})),
            "job_detail": answer("GET /api/jobs/<id>", await http.get(f"/api/jobs/{done}")),
            "job_unknown": answer("GET /api/jobs/<unknown>", await http.get(f"/api/jobs/{uuid.uuid4()}")),
            "jobs_bad_status": answer("GET /api/jobs?status=done",
                                      await http.get("/api/jobs", params={"status": "done"})),
            "job_cancel": answer("POST /api/jobs/<id>/cancel", await http.post(f"/api/jobs/{done}/cancel")),
            "view_subfolder_escape": answer("GET /view?filename=a.png&subfolder=../../etc", await http.get(
                "/view", params={"filename": "a.png", "subfolder": "../../etc"})),
            "origin_refused": answer("GET /queue with Origin: http://elsewhere.example", await http.get(
                "/queue", headers={"Origin": "http://elsewhere.example"})),
            "logs_subscribe": answer("PATCH /internal/logs/subscribe", await http.patch(
                "/internal/logs/subscribe", json={"clientId": me, "enabled": True})),
        }


#: The websocket traces: file name → what is queued (``me`` is the recording client's id).
TRACES = {
    "ws_own_prompt": lambda me: {"prompt": quick_prompt("record"), "client_id": me},
    "ws_other_client_prompt": lambda me: {"prompt": quick_prompt("record"), "client_id": "someone-else"},
    "ws_no_client_id_prompt": lambda me: {"prompt": slow_prompt(1)},
}


async def main(url: str) -> None:
    me = "recorder-" + uuid.uuid4().hex[:6]
    ids = {}
    for name, body in TRACES.items():
        ids[name], messages = await trace(url, body(me), me)
        save(name, messages)
    for name, data in (await answers(url, ids["ws_own_prompt"], me)).items():
        save(name, data)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1].rstrip("/")))
