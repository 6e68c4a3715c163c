"""The CLI's words for what a person can give (:class:`~pistachio_tui.remedies.Need`): its flags."""

from __future__ import annotations

from pistachio_tui.remedies import Need

CLI_REMEDIES = {
    Need.COMFY_DIR: "give --comfy-dir DIR (the server's ComfyUI folder on this machine) to place model files "
                    "there directly",
    Need.MODEL_CHOICE: "run again with --yes to take the best exact match for each model",
    Need.NODE_LIST: "give --server URL of a ComfyUI that answers, or --object-info FILE "
                    "(a saved copy of http://<server>/object_info)",
    Need.DIFFUSION_PIPE: "pass --diffusion-pipe DIR or set DIFFUSION_PIPE_DIR",
}


def cli_remedy(needs: Need | None) -> str:
    """`` — <what to give>`` for a message that carries a need, else ""."""
    return f" — {CLI_REMEDIES[needs]}" if needs is not None else ""
