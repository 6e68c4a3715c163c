"""Pause the cyclic garbage collector while a workflow is read, parsed or converted.

Decoding, parsing and converting a workflow allocates tens of thousands of small objects
that reference counting frees as soon as the work is done; none of them form
cycles. Meanwhile every few hundred allocations wake the cyclic collector, and
its full passes walk the whole long-lived heap — in the app that includes the
server's ``object_info`` (hundreds of thousands of objects) — to find nothing.
Over the official template corpus that was about a tenth of the conversion
time. The collector is switched back on afterwards, and left alone if someone
else had already switched it off.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def without_cyclic_gc(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with the cyclic collector paused (see the module docstring)."""
    @wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with cyclic_gc_paused():
            return fn(*args, **kwargs)

    return wrapper
