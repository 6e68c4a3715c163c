"""Is the file that arrived what its name promises? Checked before a download gets its final name.

A server that wants a login answers 200 with an HTML page; a mirror may serve
an error text; a proxy may cut a file short and still close cleanly. Without
a known size or sha256 any of those would be kept as a model. So every file
is checked for what the extension promises (a safetensors header whose
tensors fit the file, the GGUF magic) and for the signs of a web page.
"""

from __future__ import annotations

from pathlib import Path

from pistachio_tui.training.checkpoints import SafetensorsProblem, check_safetensors

_HTML_TYPES = ("text/html", "application/xhtml")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<!--", b"<?xml")
_SAFETENSORS = (".safetensors", ".sft")


class NotAModel(Exception):
    """The bytes are not the model file the name promises; the message says what they are."""


def check_content_type(content_type: str | None, name: str) -> None:
    """Refuse an answer announced as a web page (unless a web page was asked for)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind.startswith(_HTML_TYPES) and not name.lower().endswith((".html", ".htm")):
        raise NotAModel(f"the server sent a web page ({kind}), not {name}: a login or error page? "
                        "Check the URL, and that the file is public or your token is set.")


def check_file(path: Path, name: str) -> None:
    """Refuse ``path`` unless its bytes look like the format ``name``'s extension promises."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.lstrip().lower().startswith(_HTML_STARTS):
        raise NotAModel(f"{name} holds a web page, not a model: a login or error page? Check the URL, "
                        "and that the file is public or your token is set.")
    lower = name.lower()
    if lower.endswith(_SAFETENSORS):
        try:
            check_safetensors(path)
        except SafetensorsProblem as exc:
            raise NotAModel(f"{name} is not a whole safetensors file ({_why(exc, path)})") from None
    elif lower.endswith(".gguf") and not head.startswith(b"GGUF"):
        raise NotAModel(f"{name} is not a GGUF file (it does not start with the GGUF magic)")


def _why(exc: SafetensorsProblem, path: Path) -> str:
    # The checker names the file it read (the temporary one); the caller names the model.
    return str(exc).replace(f"{path.name}: ", "").replace(path.name, "the file")
