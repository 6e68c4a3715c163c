"""Choosing the epoch: lowest eval loss, where it stopped improving, user override."""

from __future__ import annotations

import pytest

from pistachio_tui.training.converge import find_convergence
from pistachio_tui.training.synth import eval_curve


def test_acceptance_curve_bottoms_at_17():
    result = find_convergence(eval_curve(30, 17), patience=3)
    assert (result.best_epoch, result.stop_epoch, result.trend) == (17, 17, "rose")
    assert result.chosen_epoch == 17 and not result.overridden
    assert result.explanation == "epoch 17: lowest eval loss 0.0812; rose for the next 3 evals"


def test_flat_after_best_within_tolerance():
    losses = {0: 0.3, 1: 0.2, 2: 0.1, 3: 0.1005, 4: 0.0999, 5: 0.1002}
    result = find_convergence(losses, patience=3, tolerance=0.01)
    assert result.stop_epoch == 2 and result.trend == "flattened"
    assert result.best_epoch == 4  # the overall lowest still wins the pick
    assert "flattened after epoch 2" in result.explanation


def test_not_enough_evals_yet():
    result = find_convergence({0: 0.3, 1: 0.2, 2: 0.15, 3: 0.16}, patience=3)
    assert result.best_epoch == 2 and result.stop_epoch is None
    assert result.explanation == "epoch 2: lowest eval loss 0.15 so far; 1 eval since (need 3 to call it)"


def test_pick_restricted_to_saved_epochs():
    result = find_convergence(eval_curve(30, 17), saved_epochs=[5, 10, 15, 20, 25, 30])
    assert result.best_epoch == 20
    assert result.explanation == ("epoch 20: lowest eval loss 0.0875 among saved epochs "
                                  "(epoch 17 had 0.0812 but has no usable save)")


def test_user_override_keeps_the_suggestion():
    result = find_convergence(eval_curve(30, 17), chosen=20)
    assert result.chosen_epoch == 20 and result.overridden and result.best_epoch == 17
    assert result.explanation.startswith("epoch 20 chosen by you (eval loss")
    assert "epoch 17: lowest eval loss" in result.explanation


def test_baseline_and_nan_are_ignored():
    result = find_convergence({0: 0.01, 1: float("nan"), 2: 0.2})
    assert result.best_epoch == 2


def test_no_evals():
    result = find_convergence({})
    assert result.best_epoch is None and "no eval loss yet" in result.explanation
    with pytest.raises(ValueError):
        find_convergence({1: 0.1}, patience=0)
