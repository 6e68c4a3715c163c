"""Self-contained domain views (Pods, Batch, GPU, Training, Fix) for the app shell to mount.

Each module defines one view widget, a ``CSS_FILE`` beside it and a ``COMMANDS``
list of ``(palette title, help text, action name)``. A screen mounting views
loads their styles with ``CSS_PATH = CSS_FILES`` (the shared dialog styles are
included).
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent

#: Every style file of the views, shared ones first.
CSS_FILES: list[Path] = [_HERE / f"{name}.tcss" for name in ("common", "pods", "batch", "training", "fix", "gpu")]
