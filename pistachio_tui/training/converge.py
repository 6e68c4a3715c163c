"""Pick the checkpoint to keep from a run's eval losses.

Evals are keyed by training step, and so are saves: ``epochE/`` holds the
weights of the epoch's last step, ``stepN/`` those of step N. Two answers:
the save with the lowest eval loss at its step, and the convergence point —
the first best eval after which eval loss rose or stayed flat for
``patience`` evals in a row, the usual early-stopping rule. The user may
override the pick; the result then says so but keeps the computed figures.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Convergence", "find_convergence", "checkpoint_epoch"]

_EPOCH_NAME = re.compile(r"epoch(\d+)")


def checkpoint_epoch(name: str | None) -> int | None:
    """The epoch number of an ``epochN`` save name, else None."""
    m = _EPOCH_NAME.fullmatch(name or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Convergence:
    """Result of :func:`find_convergence`. The step-0 eval (untrained) is never picked."""
    #: Save folder (``epoch7``, ``step15``) with the lowest eval loss, or None.
    best: str | None
    best_step: int | None
    best_loss: float | None
    #: Step of the first best eval after which eval loss rose/flattened for ``patience`` evals.
    stop_step: int | None
    #: "rose" | "flattened" | None, for ``stop_step``.
    trend: str | None
    #: The save to promote: the user's choice if given, else ``best``.
    chosen: str | None
    overridden: bool
    patience: int
    explanation: str

    @property
    def best_epoch(self) -> int | None:
        return checkpoint_epoch(self.best)

    @property
    def chosen_epoch(self) -> int | None:
        return checkpoint_epoch(self.chosen)


def find_convergence(eval_losses: Mapping[int, float], saves: Mapping[int, str] | None = None, *,
                     patience: int = 3, tolerance: float = 0.0, chosen: str | None = None,
                     label: Callable[[int], str] | None = None) -> Convergence:
    """Analyse ``eval_losses`` (step → mean eval loss).

    ``saves`` maps a step to the usable save made at it; None means every
    eval counts as a candidate named by ``label`` (default ``step N``).
    ``tolerance`` is relative: a later eval counts as an improvement only if
    it is below ``best × (1 − tolerance)``; one above ``best × (1 + tolerance)``
    counts as a rise, anything between as flat. ``chosen`` is the user's override.
    """
    if patience < 1:
        raise ValueError("patience must be at least 1")
    name_of = label or (lambda step: f"step {step}")
    points = sorted((s, v) for s, v in eval_losses.items() if s > 0 and math.isfinite(v))
    stop_step, stop_loss, trend = _first_plateau(points, patience, tolerance)
    pool = [(s, v) for s, v in points if saves is None or s in saves]
    best_step, best_loss = min(pool, key=lambda p: (p[1], p[0])) if pool else (None, None)
    best = None if best_step is None else (saves[best_step] if saves is not None else name_of(best_step))
    explanation = _explain(points, best, best_step, best_loss, stop_step, stop_loss, trend, patience,
                           saves, name_of)
    if chosen is not None:
        step = next((s for s, n in (saves or {}).items() if n == chosen), None)
        picked = eval_losses.get(step) if step is not None else None
        figure = f" (eval loss {picked:.4g})" if picked is not None else ""
        explanation = f"{chosen} chosen by you{figure}; suggested: {explanation}"
    return Convergence(best, best_step, best_loss, stop_step, trend,
                       chosen if chosen is not None else best, chosen is not None, patience, explanation)


def _first_plateau(points: list[tuple[int, float]], patience: int,
                   tolerance: float) -> tuple[int | None, float | None, str | None]:
    best_i = None
    rose = True
    since = 0
    for i, (_, loss) in enumerate(points):
        best = points[best_i][1] if best_i is not None else None
        if best is None or loss < best * (1 - tolerance):
            best_i, since, rose = i, 0, True
            continue
        since += 1
        rose = rose and loss > best * (1 + tolerance)
        if since >= patience:
            step, value = points[best_i]
            return step, value, "rose" if rose else "flattened"
    return None, None, None


def _explain(points, best, best_step, best_loss, stop_step, stop_loss, trend, patience,
             saves, name_of) -> str:
    if best is None:
        if not points:
            return "no eval loss yet (needs eval_datasets and at least one eval after step 0)"
        return "no saved checkpoint has an eval loss at its step yet"
    where = f" (step {best_step})" if saves is not None else ""
    text = f"{best}{where}: lowest eval loss {best_loss:.4g}"
    overall_step, overall_loss = min(points, key=lambda p: (p[1], p[0]))
    if overall_step != best_step:
        return (f"{text} among saved checkpoints (the eval at step {overall_step} had "
                f"{overall_loss:.4g} but no usable save was made there)")
    if stop_step == best_step:
        verb = "rose" if trend == "rose" else "did not improve"
        return f"{text}; {verb} for the next {patience} evals"
    if stop_step is not None:
        word = "rose" if trend == "rose" else "flattened"
        stop = (saves or {}).get(stop_step) or name_of(stop_step)
        return (f"{text}; eval loss first {word} after {stop} ({stop_loss:.4g}) for {patience} evals, "
                "then fell again")
    after = sum(1 for s, _ in points if s > best_step)
    return f"{text} so far; {after} eval{'s' if after != 1 else ''} since (need {patience} to call it)"
