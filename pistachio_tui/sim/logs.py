"""The server log the simulator shows at /internal/logs/raw: a bounded ring of timestamped lines."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

#: ComfyUI keeps this many log entries for /internal/logs/raw.
MAX_LOG_ENTRIES = 300

_STARTUP_LINES = (
    "Checkpoint files will always be loaded safely.\n",
    "Total VRAM 24105 MB, total RAM 24105 MB\n",
    "pytorch version: 2.14.1+cu130\n",
    "Set vram state to: DISABLED\n",
    "Device: cpu\n",
    "Python version: 3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]\n",
    "ComfyUI version: 0.8.0\n",
    "ComfyUI frontend version: 1.35.9\n",
)


class ServerLog:
    """Log entries ``{"t": iso time, "m": text}``, oldest first, at most ``MAX_LOG_ENTRIES``.

    ``on_write`` gets each new entry (the server pushes them to log subscribers).
    """

    def __init__(self, on_write: Callable[[list[dict[str, str]]], None] | None = None) -> None:
        self.entries: deque[dict[str, str]] = deque(maxlen=MAX_LOG_ENTRIES)
        self._on_write = on_write

    def write(self, message: str) -> None:
        entry = {"t": datetime.now().isoformat(), "m": message}
        self.entries.append(entry)
        if self._on_write is not None:
            self._on_write([entry])

    def start_up(self, url: str, custom_nodes: list[str], failed: dict[str, str]) -> None:
        """Start afresh with the lines a booting ComfyUI prints, import failures included.

        ``custom_nodes`` are pack directory names that loaded; ``failed`` maps
        a pack directory to the module its import could not find.
        """
        self.entries.clear()
        for line in _STARTUP_LINES:
            self.write(line)
        base = "/workspace/ComfyUI/custom_nodes"
        for directory, module in failed.items():
            self.write(
                "Traceback (most recent call last):\n"
                '  File "/workspace/ComfyUI/nodes.py", line 2155, in load_custom_node\n'
                "    module_spec.loader.exec_module(module)\n"
                '  File "<frozen importlib._bootstrap_external>", line 940, in exec_module\n'
                '  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed\n'
                f'  File "{base}/{directory}/__init__.py", line 1, in <module>\n'
                f"    import {module}  # noqa: F401\n"
                f"    {'^' * (len(module) + 7)}\n"
                f"ModuleNotFoundError: No module named '{module}'\n\n"
            )
            self.write(f"Cannot import {base}/{directory} module for custom nodes: No module named '{module}'\n")
        self.write("\nImport times for custom nodes:\n")
        self.write(f"   0.0 seconds: {base}/websocket_image_save.py\n")
        for directory in custom_nodes:
            self.write(f"   0.0 seconds: {base}/{directory}\n")
        for directory in failed:
            self.write(f"   0.0 seconds (IMPORT FAILED): {base}/{directory}\n")
        self.write("\n")
        self.write("Starting server\n\n")
        self.write(f"To see the GUI go to: {url}\n")

    def body(self) -> dict[str, Any]:
        """The GET /internal/logs/raw response body."""
        return {"entries": list(self.entries), "size": {"cols": 80, "rows": 24}}
