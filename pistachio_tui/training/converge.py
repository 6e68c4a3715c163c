"""Pick the epoch to keep from a run's eval losses.

Two answers: the epoch with the lowest eval loss (among saved epochs when the
caller says which exist), and the convergence point — the first best epoch
after which eval loss rose or stayed flat for ``patience`` evals in a row,
the usual early-stopping rule. The user may override the pick; the result
then says so but keeps the computed figures for display.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

__all__ = ["Convergence", "find_convergence"]


@dataclass(frozen=True)
class Convergence:
    """Result of :func:`find_convergence`. Epoch 0 (the untrained baseline) is never picked."""
    #: Epoch with the lowest eval loss (restricted to saved epochs if given), or None.
    best_epoch: int | None
    best_loss: float | None
    #: First epoch after which eval loss rose/flattened for ``patience`` evals, or None.
    stop_epoch: int | None
    #: "rose" | "flattened" | None, for ``stop_epoch``.
    trend: str | None
    #: The epoch to promote: the user's choice if given, else ``best_epoch``.
    chosen_epoch: int | None
    overridden: bool
    patience: int
    explanation: str


def find_convergence(eval_losses: Mapping[int, float], *, patience: int = 3,
                     tolerance: float = 0.0, saved_epochs: Collection[int] | None = None,
                     chosen: int | None = None) -> Convergence:
    """Analyse ``eval_losses`` (epoch → mean eval loss).

    ``tolerance`` is relative: a later eval counts as an improvement only if it
    is below ``best × (1 − tolerance)``; one above ``best × (1 + tolerance)``
    counts as a rise, anything between as flat. ``saved_epochs`` restricts the
    best pick to epochs that have a usable checkpoint. ``chosen`` is the user's
    override and is returned as ``chosen_epoch``.
    """
    if patience < 1:
        raise ValueError("patience must be at least 1")
    points = sorted((e, v) for e, v in eval_losses.items() if e > 0 and math.isfinite(v))
    stop_epoch, stop_loss, trend = _first_plateau(points, patience, tolerance)
    pool = [(e, v) for e, v in points if saved_epochs is None or e in saved_epochs]
    best_epoch, best_loss = min(pool, key=lambda p: (p[1], p[0])) if pool else (None, None)
    explanation = _explain(points, best_epoch, best_loss, stop_epoch, stop_loss, trend, patience)
    if chosen is not None:
        picked = eval_losses.get(chosen)
        figure = f" (eval loss {picked:.4g})" if picked is not None else ""
        explanation = f"epoch {chosen} chosen by you{figure}; suggested: {explanation}"
    return Convergence(best_epoch, best_loss, stop_epoch, trend,
                       chosen if chosen is not None else best_epoch, chosen is not None,
                       patience, explanation)


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
            epoch, value = points[best_i]
            return epoch, value, "rose" if rose else "flattened"
    return None, None, None


def _explain(points, best_epoch, best_loss, stop_epoch, stop_loss, trend, patience) -> str:
    if best_epoch is None:
        if not points:
            return "no eval loss yet (needs eval_datasets and at least one eval after epoch 0)"
        return "no saved epoch has an eval loss yet"
    text = f"epoch {best_epoch}: lowest eval loss {best_loss:.4g}"
    overall_epoch, overall_loss = min(points, key=lambda p: (p[1], p[0]))
    if overall_epoch != best_epoch:
        return (f"{text} among saved epochs (epoch {overall_epoch} had {overall_loss:.4g} "
                "but has no usable save)")
    if stop_epoch == best_epoch:
        verb = "rose" if trend == "rose" else "did not improve"
        return f"{text}; {verb} for the next {patience} evals"
    if stop_epoch is not None:
        word = "rose" if trend == "rose" else "flattened"
        return (f"{text}; eval loss first {word} after epoch {stop_epoch} "
                f"({stop_loss:.4g}) for {patience} evals, then fell again")
    after = sum(1 for e, _ in points if e > best_epoch)
    return f"{text} so far; {after} eval{'s' if after != 1 else ''} since (need {patience} to call it)"
