"""Pistachio: a terminal workbench for ComfyUI, RunPod pods and DiffusionPipe training."""

import sys

__version__ = "0.1.0"

# httpx imports its command-line tool (click, pygments, rich's syntax highlighting) whenever those
# happen to be installed: ~3 MB and a tenth of a second of every start, for a tool we never run.
# A None entry makes that optional import fail, and httpx falls back to a stub ``httpx.main``.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
