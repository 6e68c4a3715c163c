"""What a person types in the History search box, as :meth:`Journal.search` arguments.

Plain words search the prompt text, workflow and model names; ``seed:N``,
``server:NAME``, ``status:WORD``, ``since:YYYY-MM-DD`` and ``until:YYYY-MM-DD``
narrow the search. A server is named as in the settings (or by its URL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class QueryError(ValueError):
    """A token of the search cannot be understood; the message says which and why."""


@dataclass(frozen=True)
class JournalQuery:
    text: str = ""
    filters: dict[str, Any] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        return {"text": self.text or None, **self.filters}


def _day(value: str, key: str) -> float:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{key}:{value} is not a date: write it as {key}:2026-12-01") from None
    if key == "until":
        day += dt.timedelta(days=1)  # "until the 3rd" includes the 3rd
    # Midnight where the person is: "since today" means since their morning, not UTC's.
    return dt.datetime.combine(day, dt.time()).timestamp()


def parse_query(typed: str, servers: Mapping[str, str]) -> JournalQuery:
    """``servers`` maps configured names to URLs (the journal keeps URLs)."""
    words: list[str] = []
    filters: dict[str, Any] = {}
    for token in typed.split():
        key, sep, value = token.partition(":")
        key = key.lower()
        if not sep or not value or key not in ("seed", "server", "status", "since", "until"):
            words.append(token)
        elif key == "seed":
            try:
                filters["seed"] = int(value)
            except ValueError:
                raise QueryError(f"seed:{value} is not a whole number") from None
        elif key == "server":
            filters["server"] = servers.get(value, value)
        elif key == "status":
            filters["status"] = value.lower()
        else:
            filters[key] = _day(value, key)
    return JournalQuery(" ".join(words), filters)
