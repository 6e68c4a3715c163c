"""The TUI's words for what a person can give (:class:`~pistachio_tui.remedies.Need`): its settings and keys.

The TUI never names a CLI flag: a need becomes the settings key to set (and the
file it goes in) or the screen and key that provide it.
"""

from __future__ import annotations

from pathlib import Path

from pistachio_tui.remedies import Need

#: How the TUI sets the ComfyUI and diffusion-pipe folders: palette commands, there on every screen.
SET_COMFY_DIR = 'ctrl+p, "Set the ComfyUI folder"'
SET_DIFFUSION_PIPE_DIR = 'ctrl+p, "Set the diffusion-pipe folder"'


def ui_remedy(need: Need, settings_path: Path | None) -> str:
    """What to do in the TUI (or its settings file, ``settings_path``) to provide ``need``."""
    where = f"the settings file {settings_path}" if settings_path is not None else "the settings file"
    return {
        Need.COMFY_DIR: f"set the server's ComfyUI folder on this machine ({SET_COMFY_DIR}; it is kept as "
                        f"comfy_dir in {where}), then press s to fix again",
        Need.MODEL_CHOICE: "press s to fix again and pick a source for each model when asked",
        Need.NODE_LIST: "add a ComfyUI server that answers on Servers (1)",
        Need.DIFFUSION_PIPE: f"set the diffusion-pipe folder ({SET_DIFFUSION_PIPE_DIR}; it is kept as "
                             f"diffusion_pipe_dir in {where}), then press R again",
    }[need]
