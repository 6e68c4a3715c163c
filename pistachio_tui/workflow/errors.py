"""The one exception every workflow reader, converter and editor raises."""

from __future__ import annotations


class WorkflowError(Exception):
    """A workflow file or structure that cannot be used.

    ``file`` names the source (or ``None`` for in-memory data), ``path`` is a
    JSON path such as ``$.nodes[3].inputs[1].link`` and ``expected`` says what
    should have been there, so the message tells a person where to look.
    """

    def __init__(self, message: str, *, file: str | None = None, path: str = "$", expected: str = "") -> None:
        self.file = file
        self.path = path
        self.expected = expected
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = f"{self.file}: " if self.file else ""
        text = f"{where}{self.path}: {self.reason}"
        if self.expected:
            text += f" (expected {self.expected})"
        return text

    def with_file(self, file: str | None) -> "WorkflowError":
        """The same error attributed to ``file`` (readers learn the name late)."""
        if self.file or not file:
            return self
        return WorkflowError(self.reason, file=file, path=self.path, expected=self.expected)
