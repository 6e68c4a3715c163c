"""How a run picks its seed: the one list of seed modes the editor, batch files and the CLI accept.

Kept apart from ``edit`` so the command line can offer the modes without importing the graph code.
"""

from __future__ import annotations

from typing import Literal, get_args

SeedMode = Literal["random", "increment", "fixed"]
#: Every seed mode, in the order menus and ``--seed-mode`` offer them.
SEED_MODES: tuple[SeedMode, ...] = get_args(SeedMode)
#: The editor draws random seeds below 2**50 so they survive JavaScript numbers.
SEED_MAX = 1125899906842624
