"""Choosing the checkpoint: lowest eval loss at a save's step, where it stopped improving, user override."""

from __future__ import annotations

import pytest

from pistachio_tui.training.converge import checkpoint_epoch, find_convergence
from pistachio_tui.training.synth import eval_curve


def by_epoch(step: int) -> str:
    return f"epoch {step}"


def test_acceptance_curve_bottoms_at_17():
    result = find_convergence(eval_curve(30, 17), patience=3, label=by_epoch)
    assert (result.best, result.best_step, result.stop_step, result.trend) == ("epoch 17", 17, 17, "rose")
    assert result.chosen == "epoch 17" and not result.overridden
    assert result.explanation == "epoch 17: lowest eval loss 0.0812; rose for the next 3 evals"


def test_flat_after_best_within_tolerance():
    losses = {0: 0.3, 1: 0.2, 2: 0.1, 3: 0.1005, 4: 0.0999, 5: 0.1002}
    result = find_convergence(losses, patience=3, tolerance=0.01, label=by_epoch)
    assert result.stop_step == 2 and result.trend == "flattened"
    assert result.best_step == 4  # the overall lowest still wins the pick
    assert "flattened after epoch 2" in result.explanation


def test_not_enough_evals_yet():
    result = find_convergence({0: 0.3, 1: 0.2, 2: 0.15, 3: 0.16}, patience=3, label=by_epoch)
    assert result.best_step == 2 and result.stop_step is None
    assert result.explanation == "epoch 2: lowest eval loss 0.15 so far; 1 eval since (need 3 to call it)"


def test_pick_restricted_to_saves_names_the_folder():
    saves = {e: f"epoch{e}" for e in (5, 10, 15, 20, 25, 30)}
    result = find_convergence(eval_curve(30, 17), saves, label=by_epoch)
    assert (result.best, result.best_epoch) == ("epoch20", 20)
    assert result.explanation == ("epoch20 (step 20): lowest eval loss 0.0875 among saved checkpoints "
                                  "(the eval at step 17 had 0.0812 but no usable save was made there)")


def test_step_saves_between_epoch_ends_are_candidates():
    """Evals every 5 steps, epochs of 8 steps: the minimum sits on a step save."""
    losses = {0: 0.2, 5: 0.15, 8: 0.12, 10: 0.11, 15: 0.09, 16: 0.095, 20: 0.1, 24: 0.11, 25: 0.12}
    saves = {5: "step5", 8: "epoch1", 10: "step10", 15: "step15", 16: "epoch2", 20: "step20",
             24: "epoch3", 25: "step25"}
    result = find_convergence(losses, saves)
    assert (result.best, result.best_step, result.best_epoch) == ("step15", 15, None)
    assert result.explanation.startswith("step15 (step 15): lowest eval loss 0.09; rose for the next 3 evals")


def test_user_override_keeps_the_suggestion():
    saves = {e: f"epoch{e}" for e in range(1, 31)}
    result = find_convergence(eval_curve(30, 17), saves, chosen="epoch20")
    assert result.chosen == "epoch20" and result.chosen_epoch == 20 and result.overridden
    assert result.best == "epoch17"
    assert result.explanation.startswith("epoch20 chosen by you (eval loss 0.0875)")
    assert "epoch17 (step 17): lowest eval loss" in result.explanation


def test_baseline_and_nan_are_ignored():
    result = find_convergence({0: 0.01, 1: float("nan"), 2: 0.2})
    assert result.best_step == 2 and result.best == "step 2"


def test_no_evals():
    result = find_convergence({})
    assert result.best is None and "no eval loss yet" in result.explanation
    with pytest.raises(ValueError):
        find_convergence({1: 0.1}, patience=0)


def test_checkpoint_epoch():
    assert [checkpoint_epoch(n) for n in ("epoch7", "step15", None, "epochs")] == [7, None, None, None]
