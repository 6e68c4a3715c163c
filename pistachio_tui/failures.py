"""Words for failures no handler planned for, so a background loop can show them instead of dying."""

from __future__ import annotations

import asyncio


def unexpected_reason(exc: BaseException) -> str:
    """A reason to show for an exception nothing was written to expect, naming its type and, for an
    exception group (what task groups raise), every member: ``OverflowError: port must be 0-65535.``"""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(unexpected_reason(inner) for inner in exc.exceptions)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def cancelled_meanwhile() -> bool:
    """True when the current task was asked to stop while it handled a failure. Some libraries
    turn a cancellation that lands mid-connect into an ordinary error (a task group's exception
    group): a loop that carries on after errors must check this, or it can never be stopped."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
