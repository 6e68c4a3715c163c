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
from collections.abc import Callable
from functools import wraps
from types import TracebackType
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


class cyclic_gc_paused:  # lower case: used like the function it replaced, ``with cyclic_gc_paused():``
    """The collector off for the ``with`` block, then as it was.

    A plain class, not ``contextlib.contextmanager``: its generator machinery cost
    a microsecond per use, several times per workflow.
    """

    __slots__ = ("_was_enabled",)

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._was_enabled:
            gc.enable()


def without_cyclic_gc(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with the cyclic collector paused (see the module docstring)."""
    @wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with cyclic_gc_paused():
            return fn(*args, **kwargs)

    return wrapper
