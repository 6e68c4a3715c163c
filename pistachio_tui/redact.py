"""Credentials out of URLs before they are shown, logged or stored.

Model URLs come from workflows and model lists people share: some carry a
``user:password@`` or a signed ``?token=…``/``X-Amz-Signature=…``. Anything a
person sees (messages, ``--json``, transcripts) or that lands in a state file
goes through :func:`safe_url` or :func:`scrub_urls`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_SENSITIVE_KEY = re.compile(r"(?i)token|key|sig|auth|pass|secret|cred|session|x-amz-|policy|code")
HIDDEN = "…"


def safe_url(url: str) -> str:
    """``url`` without a ``user:password@`` and with the values of credential-like query
    parameters (``token``, ``sig``, ``X-Amz-…``, ``key``…) replaced by ``…``."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        # Not parseable as a URL (``http://[::1``): show only where it starts.
        return url.split("://", 1)[0] + "://" + HIDDEN if "://" in url else HIDDEN
    if "@" in parts.netloc:
        host = f"{HIDDEN}@{host}"
    if any(_SENSITIVE_KEY.search(k) for k, _ in query):
        shown = "&".join(f"{quote(k)}={HIDDEN if _SENSITIVE_KEY.search(k) else quote(v)}" for k, v in query)
        parts = parts._replace(query=shown)
    return urlunsplit(parts._replace(netloc=host))


def scrub_urls(text: str) -> str:
    """``text`` with every URL in it passed through :func:`safe_url`."""
    return _URL.sub(lambda m: safe_url(m.group(0)), text)


def scrub_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`scrub_data` for a keyword mapping, keeping its type."""
    return {k: scrub_data(v) for k, v in data.items()}


def scrub_data(value: object) -> object:
    """A JSON-like value with every string in it passed through :func:`scrub_urls` (for state
    files and ``--json`` output)."""
    if isinstance(value, str):
        return scrub_urls(value)
    if isinstance(value, dict):
        return {k: scrub_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_data(v) for v in value]
    return value
