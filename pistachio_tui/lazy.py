"""A module imported when one of its names is first read, for modules start-up does not need.

Write ``events = lazy_module("pistachio_tui.comfy.events")`` (under ``if not
TYPE_CHECKING``, with the plain import above it for the type checker) and use
``events.Connected`` as usual: the import happens on the first read, and later
reads cost what they cost on the module itself (names are copied once: for
modules that do not rebind their names after import). Unlike ``importlib.util.LazyLoader``,
nothing is put in ``sys.modules`` before the module really loads.
"""

from __future__ import annotations

import importlib
from typing import Any


class _LazyModule:
    def __init__(self, name: str) -> None:
        self._lazy_name = name

    def __getattr__(self, attr: str) -> Any:
        # Only called for names not yet copied here: after the first, every name is a plain attribute.
        module = importlib.import_module(self._lazy_name)
        self.__dict__.update(vars(module))
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._lazy_name!r}>"


def lazy_module(name: str) -> Any:
    """``name``, imported when one of its names is first read."""
    return _LazyModule(name)
