"""``/api/jobs`` of the simulator: the queue and history as ComfyUI 0.8.0's unified job list.

Shapes follow ``comfy_execution/jobs.py`` and the ``/api/jobs`` routes of ComfyUI
0.8.0's ``server.py`` (recorded in ``tests/fixtures/comfyui-0.8.0/contract``): keys
whose value is None are left out, times are epoch milliseconds, finished jobs
carry a count of outputs and one ``preview_output``, and only ``/api/jobs/{id}``
of a finished job adds its outputs, status messages and prompt.
"""

from __future__ import annotations

from typing import Any

from pistachio_tui.sim.prompt_queue import QueuedPrompt

PENDING, IN_PROGRESS, COMPLETED, FAILED = "pending", "in_progress", "completed", "failed"
ALL_STATUSES = (PENDING, IN_PROGRESS, COMPLETED, FAILED)
_PREVIEWABLE = {"images", "video", "audio"}
_ENDINGS = ("execution_success", "execution_error", "execution_interrupted")


class BadJobsQuery(ValueError):
    """A query parameter the real server answers with 400 and this message."""


def _without_none(job: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in job.items() if value is not None}


def _workflow_id(extra_data: dict[str, Any]) -> Any:
    return ((extra_data.get("extra_pnginfo") or {}).get("workflow") or {}).get("id")


def queued_job(item: QueuedPrompt, status: str) -> dict[str, Any]:
    return _without_none({
        "id": item.prompt_id, "status": status, "priority": item.number,
        "create_time": item.extra_data.get("create_time"), "outputs_count": 0,
        "workflow_id": _workflow_id(item.extra_data),
    })


def _outputs_summary(outputs: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    count = 0
    preview: dict[str, Any] | None = None
    fallback: dict[str, Any] | None = None
    for node_id, node_outputs in outputs.items():
        if not isinstance(node_outputs, dict):
            continue
        for media_type, items in node_outputs.items():
            if media_type == "animated" or not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, dict):
                    continue
                count += 1
                if preview is None and media_type in _PREVIEWABLE:
                    enriched = {**item, "nodeId": node_id, "mediaType": media_type}
                    if item.get("type") == "output":
                        preview = enriched
                    elif fallback is None:
                        fallback = enriched
    return count, preview or fallback


def finished_job(prompt_id: str, entry: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    number, _, prompt, extra_data, _ = entry["prompt"]
    status = entry.get("status") or {}
    started = ended = error = None
    for name, data in status.get("messages", []):
        if name == "execution_start":
            started = data.get("timestamp")
        elif name in _ENDINGS:
            ended = data.get("timestamp")
            if name == "execution_error":
                error = data
    count, preview = _outputs_summary(entry.get("outputs") or {})
    job = _without_none({
        "id": prompt_id, "status": FAILED if status.get("status_str") == "error" else COMPLETED,
        "priority": number, "create_time": extra_data.get("create_time"),
        "execution_start_time": started, "execution_end_time": ended, "execution_error": error,
        "outputs_count": count, "preview_output": preview, "workflow_id": _workflow_id(extra_data),
    })
    if detail:
        job["outputs"] = entry.get("outputs") or {}
        job["execution_status"] = status
        job["workflow"] = {"prompt": prompt, "extra_data": extra_data}
    return job


def _int_param(query: dict[str, str], name: str) -> int | None:
    if name not in query:
        return None
    try:
        return int(query[name])
    except ValueError:
        raise BadJobsQuery(f"{name} must be an integer") from None


def list_jobs(query: dict[str, str], running: list[QueuedPrompt], pending: list[QueuedPrompt],
              history: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The body of ``GET /api/jobs`` for ``query``; raises ``BadJobsQuery`` where the real one says 400."""
    statuses = list(ALL_STATUSES)
    if query.get("status"):
        statuses = [s.strip().lower() for s in query["status"].split(",") if s.strip()]
        invalid = [s for s in statuses if s not in ALL_STATUSES]
        if invalid:
            raise BadJobsQuery(f"Invalid status value(s): {', '.join(invalid)}. "
                               f"Valid values: {', '.join(ALL_STATUSES)}")
    sort_by = query.get("sort_by", "created_at").lower()
    sort_order = query.get("sort_order", "desc").lower()
    if sort_by not in ("created_at", "execution_duration"):
        raise BadJobsQuery("sort_by must be 'created_at' or 'execution_duration'")
    if sort_order not in ("asc", "desc"):
        raise BadJobsQuery("sort_order must be 'asc' or 'desc'")
    limit = _int_param(query, "limit")
    if limit is not None and limit <= 0:
        raise BadJobsQuery("limit must be a positive integer")
    offset = max(0, _int_param(query, "offset") or 0)

    jobs: list[dict[str, Any]] = []
    if IN_PROGRESS in statuses:
        jobs += [queued_job(item, IN_PROGRESS) for item in running]
    if PENDING in statuses:
        jobs += [queued_job(item, PENDING) for item in pending]
    for prompt_id, entry in history.items():
        failed = (entry.get("status") or {}).get("status_str") == "error"
        if (FAILED if failed else COMPLETED) in statuses:
            jobs.append(finished_job(prompt_id, entry))
    if query.get("workflow_id"):
        jobs = [job for job in jobs if job.get("workflow_id") == query["workflow_id"]]

    def key(job: dict[str, Any]) -> float:
        if sort_by == "execution_duration":
            start, end = job.get("execution_start_time", 0), job.get("execution_end_time", 0)
            return end - start if start and end else 0
        return job.get("create_time", 0)

    jobs.sort(key=key, reverse=sort_order == "desc")
    total = len(jobs)
    jobs = jobs[offset:]
    if limit is not None:
        jobs = jobs[:limit]
    return {"jobs": jobs, "pagination": {"offset": offset, "limit": limit, "total": total,
                                         "has_more": offset + len(jobs) < total}}


def one_job(prompt_id: str, running: list[QueuedPrompt], pending: list[QueuedPrompt],
            history: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The body of ``GET /api/jobs/{id}``, or None (the real server then answers 404)."""
    if prompt_id in history:
        return finished_job(prompt_id, history[prompt_id], detail=True)
    for items, status in ((running, IN_PROGRESS), (pending, PENDING)):
        for item in items:
            if item.prompt_id == prompt_id:
                return queued_job(item, status)
    return None
