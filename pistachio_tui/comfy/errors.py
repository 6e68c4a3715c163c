"""Typed failures of a ComfyUI server; each message tells a person what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pistachio_tui.comfy.types import ValidationReport


class ComfyError(Exception):
    """Base of every ComfyUI failure; ``message`` is meant to be shown as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServerUnreachable(ComfyError):
    """No answer at all: connection refused, DNS, timeout, TLS."""


class AuthRequired(ComfyError):
    """The server (usually a proxy in front of it) answered 401 or 403."""


class Refused(AuthRequired):
    """ComfyUI itself (not a proxy) answered 403: a path outside its folders, its origin check,
    or ComfyUI-Manager's security level. A kind of ``AuthRequired`` so code that handles every
    refusal keeps doing so; the message says which one it was."""

    def __init__(self, message: str, *, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ServerError(ComfyError):
    """A 5xx or any status the endpoint should not return."""

    def __init__(self, message: str, *, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class BadResponse(ComfyError):
    """The server answered, but with something that is not the expected JSON."""


class PromptRejected(ComfyError):
    """``POST /prompt`` answered 400: the prompt failed validation."""

    def __init__(self, message: str, *, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report
