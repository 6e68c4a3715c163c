"""An epoch tournament: the saves around the eval-loss minimum, rendered side by side.

Eval loss is a weak signal for character LoRAs; people pick by looking. For
each chosen save the LoRA is copied into the server's ``loras/`` folder under a
readable temporary name (``pistachio-tournament/<run>-<save>.safetensors``,
verified like a promote), a fixed set of prompts (each with the trigger word,
one fixed seed) runs as one fleet batch — the workflow's LoRA loader set to
each save in turn — and the images are laid out as a grid, saves down, prompts
across, in ``tournament.png``. The temporary LoRAs are removed afterwards.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, UnidentifiedImageError

from pistachio_tui.config import ServerConfig
from pistachio_tui.training.checkpoints import ADAPTER_FILE, SafetensorsProblem, check_safetensors
from pistachio_tui.training.errors import CheckpointUnusable, TrainingError
from pistachio_tui.training.promote import run_title
from pistachio_tui.training.watch import RunState

__all__ = ["TournamentResult", "TournamentError", "pick_contenders", "tournament_prompts", "stage_loras",
           "unstage", "run_tournament", "grid_sheet", "STAGE_FOLDER", "SHEET_NAME"]

STAGE_FOLDER = "pistachio-tournament"
SHEET_NAME = "tournament.png"
_DEFAULT_PROMPTS = ("{t}, portrait photo, soft window light", "{t}, full body, walking in a city street",
                    "{t}, close-up, looking at the camera, outdoors")


class TournamentError(TrainingError):
    """The tournament cannot run as asked; the message says what to change."""


def pick_contenders(state: RunState, around: int = 2) -> list[str]:
    """The best usable save (lowest eval loss at its step) and ``around`` saves on each side."""
    saves = [c for c in state.candidates() if c.ok and c.step is not None]
    if not saves:
        raise TournamentError(f"{state.name} has no usable saves yet")
    best = state.convergence().best
    i = next((k for k, c in enumerate(saves) if c.name == best), len(saves) - 1)
    return [c.name for c in saves[max(0, i - around): i + around + 1]]


def tournament_prompts(trigger: str | None, prompts: list[str] | None = None) -> list[str]:
    """The prompts to render: the user's, each given the trigger word when it lacks it."""
    texts = list(prompts) if prompts else [p.format(t=trigger or "").lstrip(", ") for p in _DEFAULT_PROMPTS]
    if trigger:
        texts = [t if re.search(rf"\b{re.escape(trigger)}\b", t) else f"{trigger}, {t}" for t in texts]
    return texts


def stage_loras(run_dir: Path, checkpoints: list[str], loras_dir: Path) -> dict[str, str]:
    """Copy each save's LoRA into ``loras_dir/pistachio-tournament/``; save name → name ComfyUI lists."""
    if not loras_dir.is_dir():
        raise TournamentError(f"{loras_dir} is not a ComfyUI loras folder — give the server's ComfyUI folder")
    folder = loras_dir / STAGE_FOLDER
    folder.mkdir(exist_ok=True)
    names = {}
    for checkpoint in checkpoints:
        source = run_dir / checkpoint / ADAPTER_FILE
        try:
            size = check_safetensors(source)
        except SafetensorsProblem as exc:
            raise CheckpointUnusable(f"{checkpoint}: {exc}") from None
        target = folder / f"{run_title(run_dir)}-{checkpoint}.safetensors"
        shutil.copyfile(source, target)
        if target.stat().st_size != size:
            raise TournamentError(f"copying {checkpoint} into {folder} did not complete — check free space")
        names[checkpoint] = f"{STAGE_FOLDER}/{target.name}"
    return names


def unstage(loras_dir: Path, names: dict[str, str]) -> None:
    for name in names.values():
        (loras_dir / name).unlink(missing_ok=True)
    try:
        (loras_dir / STAGE_FOLDER).rmdir()
    except OSError:
        pass  # not empty: another tournament is using it


@dataclass
class TournamentResult:
    checkpoints: list[str]
    prompts: list[str]
    #: (save, prompt index) → image file in ``out_dir``.
    images: dict[tuple[str, int], Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    sheet: Path | None = None


async def run_tournament(run_dir: Path, checkpoints: list[str], prompts: list[str], *, workflow: Path,
                         servers: list[ServerConfig], loras_dir: Path, out_dir: Path, seed: int = 1234,
                         on_progress: Callable[[str], None] | None = None) -> TournamentResult:
    """Render every prompt with every save on ``servers`` and write the grid sheet."""
    from pistachio_tui.fleet.build import prepare_batch
    from pistachio_tui.fleet.spec import BatchSpec

    names = await asyncio.to_thread(stage_loras, run_dir, checkpoints, loras_dir)
    by_name = {v: k for k, v in names.items()}
    result = TournamentResult(checkpoints, prompts)
    try:
        spec = BatchSpec(workflow=workflow, prompts=prompts, grid={"lora": list(names.values())},
                         seed_mode="fixed", start_seed=seed, out_dir=out_dir, name="tournament")
        batch = await prepare_batch(spec, servers, out_dir=out_dir)

        def event(e) -> None:
            if on_progress is not None and e.kind in ("done", "failed"):
                on_progress(f"{e.kind}: {e.job}")

        outcome = await batch.runner(event).run()
        result.failed = dict(outcome.failed)
        for record in outcome.records:
            checkpoint = by_name.get(record.params.get("lora", ""))
            text = record.params.get("prompt")
            if checkpoint is None or text not in prompts or not record.files:
                continue
            result.images[(checkpoint, prompts.index(text))] = out_dir / record.files[0]
    finally:
        await asyncio.to_thread(unstage, loras_dir, names)
    result.sheet = await asyncio.to_thread(grid_sheet, result, out_dir / SHEET_NAME)
    return result


def grid_sheet(result: TournamentResult, path: Path, *, thumb: int = 256) -> Path | None:
    """Saves down, prompts across; a missing image is a grey tile. None without any image."""
    if not result.images:
        return None
    label_w, head_h = 120, 24
    cols, rows = len(result.prompts), len(result.checkpoints)
    sheet = Image.new("RGB", (label_w + cols * thumb, head_h + rows * thumb), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for j, prompt in enumerate(result.prompts):
        draw.text((label_w + j * thumb + 4, 6), prompt[:40], fill=(220, 220, 220))
    for i, checkpoint in enumerate(result.checkpoints):
        y = head_h + i * thumb
        draw.text((6, y + thumb // 2), checkpoint, fill=(255, 220, 120))
        for j in range(cols):
            x = label_w + j * thumb
            file = result.images.get((checkpoint, j))
            try:
                if file is None:
                    raise FileNotFoundError
                with Image.open(file) as img:
                    img.thumbnail((thumb, thumb))
                    sheet.paste(img.convert("RGB"), (x, y))
            except (OSError, UnidentifiedImageError):
                draw.rectangle((x + 2, y + 2, x + thumb - 3, y + thumb - 3), fill=(70, 70, 70))
    sheet.save(path)
    return path
