"""Typed failures of the RunPod API; each message tells a person what to do next.

No message ever contains the API key: the client scrubs every piece of text it
did not write itself (server error messages, transport errors) before it ends
up in one of these exceptions.
"""

from __future__ import annotations

KEY_SETTINGS_URL = "https://www.runpod.io/console/user/settings"
KEY_HELP = f"create one at {KEY_SETTINGS_URL} and set RUNPOD_API_KEY"


class RunPodError(Exception):
    """Base of every RunPod failure; ``message`` is meant to be shown as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiKeyMissing(RunPodError):
    """No RunPod API key is configured."""

    def __init__(self, secrets_path: str | None = None) -> None:
        where = f" or put RUNPOD_API_KEY = \"...\" in {secrets_path} (chmod 600)" if secrets_path else ""
        super().__init__(
            f"No RunPod API key — create one at {KEY_SETTINGS_URL}, then export RUNPOD_API_KEY{where}"
        )


class ApiKeyRejected(RunPodError):
    """RunPod answered 401/403 or a GraphQL "unauthorized" error."""

    def __init__(self, hint: str = "") -> None:
        super().__init__(f"RunPod rejected the API key — {KEY_HELP}{hint}")


class RateLimited(RunPodError):
    """RunPod answered 429; ``retry_after`` is in seconds when the server said."""

    def __init__(self, retry_after: float | None) -> None:
        when = f"in {retry_after:g} s" if retry_after is not None else "in a minute"
        super().__init__(f"RunPod is rate limiting this API key — retry {when}")
        self.retry_after = retry_after


class RunPodUnreachable(RunPodError):
    """No answer at all: DNS, refused connection, TLS, timeout."""


class RunPodServerError(RunPodError):
    """An HTTP status the API should not return (5xx, unexpected 4xx)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class GraphQLError(RunPodError):
    """The API answered with ``errors[]``; ``messages`` lists them (already scrubbed)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("RunPod refused the request: " + "; ".join(messages))
        self.messages = messages


class BadResponse(RunPodError):
    """The API answered, but not with the JSON shape this client expects."""


class PodNotFound(RunPodError):
    """No pod with this id in the account."""

    def __init__(self, pod_id: str) -> None:
        super().__init__(f"No pod with id {pod_id!r} in this RunPod account — `pistachio pods` lists them")
        self.pod_id = pod_id


class ConfirmationMismatch(RunPodError):
    """A terminate was asked for without typing the pod's exact name."""

    def __init__(self, pod_id: str, expected: str) -> None:
        super().__init__(
            f"Refusing to terminate {pod_id}: the confirmation must be the pod's name exactly ({expected!r});"
            " terminating deletes the pod and its volume for good"
        )
        self.pod_id = pod_id
        self.expected = expected


class ActionNotAllowed(RunPodError):
    """RunPod refused a pod action in the pod's current status (REST 409)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"RunPod refused: {detail} — refresh and check the pod's status")
        self.detail = detail


class GraphQLUnavailable(RunPodError):
    """The GraphQL API is not there any more (404/410/501): only REST v2 answers."""
