"""A protocol-faithful simulated ComfyUI 0.8.0 server (with optional ComfyUI-Manager v4 emulation).

Used by the tests, the benchmarks, the fix flow's rehearsals and ``pistachio demo``.
"""

from pistachio_tui.sim.server import SimServer
from pistachio_tui.sim.validate import validate_prompt

__all__ = ["SimServer", "validate_prompt"]
