"""Where each epoch of a run ended, from what the console and TensorBoard show.

Every epoch of a DiffusionPipe run has the same number of steps (the data
loader's length divided by gradient accumulation), so epoch E ends at step
``E × steps_per_epoch``. That number is never printed. It is seen exactly
when the console shows ``Started new epoch: E+1`` right after step S's lines,
or when an epoch-end eval is logged at S. With ``logging_steps > 1`` or
``steps_per_print > 1`` only bounds are seen — the epoch ended between the
last logged step and the next one — and the bounds of a few epochs together
pin the number down.
"""

from __future__ import annotations

import math

__all__ = ["EpochEnds"]


class EpochEnds:
    """Epoch → last step, exact where seen, else from the inferred steps per epoch."""

    def __init__(self) -> None:
        self.exact: dict[int, int] = {}
        self._bounds: dict[int, tuple[int, int | None]] = {}

    def seen(self, epoch: int, last_step: int) -> None:
        """Epoch ``epoch`` ended exactly at ``last_step``."""
        if epoch >= 1 and last_step >= epoch:
            self.exact[epoch] = last_step

    def bounded(self, epoch: int, low: int, high: int | None) -> None:
        """Epoch ``epoch`` ended at a step in ``[low, high]`` (``high`` None: unknown)."""
        if epoch < 1 or epoch in self.exact:
            return
        old_low, old_high = self._bounds.get(epoch, (0, None))
        highs = [h for h in (old_high, high) if h is not None]
        self._bounds[epoch] = (max(low, old_low), min(highs) if highs else None)

    def set_high(self, epoch: int, high: int) -> None:
        """The first step logged after the epoch ended was ``high + 1``."""
        if epoch in self._bounds:
            self.bounded(epoch, self._bounds[epoch][0], high)

    @property
    def steps_per_epoch(self) -> int | None:
        exact = sorted(self.exact.items())
        for (e1, s1), (e2, s2) in zip(exact[::-1][1:], exact[::-1]):
            if e2 == e1 + 1 and s2 > s1:
                return s2 - s1
        for epoch, step in exact:
            if step % epoch == 0:
                return step // epoch
        low, high = 1, None
        for epoch, (lo, hi) in self._bounds.items():
            low = max(low, math.ceil(lo / epoch))
            if hi is not None:
                high = hi // epoch if high is None else min(high, hi // epoch)
        return low if high is not None and low == high else None

    def end_of(self, epoch: int) -> int | None:
        """The last step of ``epoch`` (0 for epoch 0, the untrained baseline), if known."""
        if epoch == 0:
            return 0
        if epoch in self.exact:
            return self.exact[epoch]
        spe = self.steps_per_epoch
        return epoch * spe if spe else None

    def epoch_ending_at(self, step: int) -> int | None:
        """The epoch whose last step is ``step``, if any is known to end there."""
        if step == 0:
            return 0
        for epoch, end in self.exact.items():
            if end == step:
                return epoch
        spe = self.steps_per_epoch
        return step // spe if spe and step % spe == 0 else None
