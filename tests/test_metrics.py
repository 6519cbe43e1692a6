"""Tests for alti2v.metrics against brute-force definitions, hand-worked examples and Keras."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alti2v.metrics import (
    average_precision,
    binary_cross_entropy,
    mean_average_precision,
    micro_f1,
    summarize,
)


def brute_force_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """For each positive: of the images scored at least as high, the share that are positive."""
    precisions = []
    for index in np.flatnonzero(targets):
        at_or_above = scores >= scores[index]
        precisions.append(targets[at_or_above].sum() / at_or_above.sum())
    return float(np.mean(precisions))


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.random(200)  # continuous, so no ties
    targets = (rng.random(200) < 0.3).astype(np.float32)
    assert average_precision(scores, targets) == pytest.approx(
        brute_force_average_precision(scores, targets), abs=1e-12
    )


def test_average_precision_hand_example() -> None:
    # Ranked: pos, neg, pos, neg -> precisions 1/1 and 2/3.
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    targets = np.array([1, 0, 1, 0])
    assert average_precision(scores, targets) == pytest.approx((1 + 2 / 3) / 2)


def test_perfect_ranking_gives_one() -> None:
    rng = np.random.default_rng(0)
    targets = (rng.random(100) < 0.2).astype(np.float32)
    scores = targets * 0.5 + rng.random(100) * 0.4  # every positive above every negative
    assert average_precision(scores, targets) == 1.0


def test_worst_ranking() -> None:
    scores = np.array([0.9, 0.8, 0.1])
    targets = np.array([0, 0, 1])
    assert average_precision(scores, targets) == pytest.approx(1 / 3)


def test_average_precision_without_positives_is_nan() -> None:
    assert math.isnan(average_precision(np.array([0.1, 0.9]), np.array([0, 0])))


def test_mean_average_precision_ignores_tags_without_positives() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random((60, 4))
    targets = (rng.random((60, 4)) < 0.3).astype(np.float32)
    targets[:, 2] = 0  # no image carries tag 2
    expected = np.mean(
        [brute_force_average_precision(scores[:, tag], targets[:, tag]) for tag in (0, 1, 3)]
    )
    assert mean_average_precision(scores, targets) == pytest.approx(expected, abs=1e-12)


def test_mean_average_precision_without_any_positive_is_nan() -> None:
    assert math.isnan(mean_average_precision(np.ones((3, 2)), np.zeros((3, 2))))


def test_micro_f1_hand_example() -> None:
    scores = np.array([[0.9, 0.2, 0.6], [0.4, 0.7, 0.1]])
    targets = np.array([[1, 0, 0], [1, 1, 0]])
    # Predicted at 0.5: (0,0) (0,2) (1,1). True positives 2, predicted 3, actual 3.
    assert micro_f1(scores, targets) == pytest.approx(2 * 2 / (3 + 3))
    # At 0.3 (1,0) is predicted too: true positives 3, predicted 4 -> F1 = 6/7.
    assert micro_f1(scores, targets, threshold=0.3) == pytest.approx(6 / 7)
    # The threshold is inclusive.
    assert micro_f1(np.array([[0.5]]), np.array([[1]])) == 1.0


def test_micro_f1_with_nothing_predicted_or_present_is_nan() -> None:
    assert math.isnan(micro_f1(np.zeros((2, 2)), np.zeros((2, 2))))
    assert micro_f1(np.zeros((2, 2)), np.eye(2)) == 0.0


def test_binary_cross_entropy_matches_keras() -> None:
    import keras

    rng = np.random.default_rng(2)
    scores = rng.random((16, 9)).astype(np.float32)
    scores[0, 0], scores[0, 1] = 0.0, 1.0  # clipped, not infinite
    targets = (rng.random((16, 9)) < 0.4).astype(np.float32)
    per_image = keras.losses.binary_crossentropy(targets, scores)
    expected = float(np.mean(keras.ops.convert_to_numpy(per_image)))
    actual = binary_cross_entropy(scores, targets)
    assert math.isfinite(actual)
    assert actual == pytest.approx(expected, rel=1e-5)


def test_binary_cross_entropy_hand_example() -> None:
    scores = np.array([[0.8, 0.25]])
    targets = np.array([[1.0, 0.0]])
    assert binary_cross_entropy(scores, targets) == pytest.approx(
        -(math.log(0.8) + math.log(0.75)) / 2
    )


def test_summarize_names() -> None:
    scores = np.array([[0.9, 0.1], [0.2, 0.8]])
    targets = np.eye(2)
    summary = summarize(scores, targets)
    assert set(summary) == {"loss", "map", "micro_f1"}
    assert (summary["map"], summary["micro_f1"]) == (1.0, 1.0)
