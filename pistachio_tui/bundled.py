"""Folders shipped with Pistachio beside its package: the sample ``workflows/`` and the ``themes/``.

In a checkout (the README's editable install) they are the repository's own
folders. A regular install copies them to ``<prefix>/share/pistachio-tui/``
(see ``data-files`` in ``pyproject.toml``), under the environment's prefix or,
for ``pip install --user``, the user base.
"""

from __future__ import annotations

import site
import sys
from pathlib import Path

import pistachio_tui

SHARE = Path("share") / "pistachio-tui"


def bundled(name: str, *, checkout: Path | None = None, prefixes: list[Path] | None = None) -> Path:
    """The shipped folder ``name``; the checkout's when there is one, else the first installed copy.

    When none exists the checkout path is returned, so callers list nothing rather than fail.
    """
    root = checkout or Path(pistachio_tui.__file__).parent.parent
    # Only a source tree has pyproject.toml beside the package; site-packages may hold
    # an unrelated top-level "themes" or "workflows" folder.
    if (root / "pyproject.toml").is_file() and (root / name).is_dir():
        return root / name
    for prefix in prefixes if prefixes is not None else [Path(sys.prefix), Path(site.getuserbase())]:
        if (prefix / SHARE / name).is_dir():
            return prefix / SHARE / name
    return root / name
