"""Tests for alti2v.model.metrics against brute-force definitions, hand-worked examples (ties among
them) and Keras."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alti2v.model.metrics import (
    average_precision,
    binary_cross_entropy,
    confusion_counts,
    mean_average_precision,
    micro_f1,
    precision_recall_f,
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
    assert average_precision(scores, targets) == pytest.approx(1.0)


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


def test_a_constant_score_gets_the_positive_rate() -> None:
    # Every image tied: one threshold, precision 3/8 at recall 1, whatever the order of rows.
    targets = np.array([1, 0, 0, 1, 0, 0, 1, 0])
    for order in (targets, targets[::-1], np.sort(targets)):
        assert average_precision(np.full(8, 0.3), order) == pytest.approx(3 / 8)


def test_ties_share_one_threshold() -> None:
    # Ranked groups: {pos} at 0.9, then {pos, neg, neg} tied at 0.5, then {pos} at 0.1.
    # Thresholds: 0.9 -> P 1, R 1/3; 0.5 -> P 2/4, R 2/3; 0.1 -> P 3/5, R 1.
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.5])
    targets = np.array([0, 1, 1, 1, 0])
    expected = 1 * (1 / 3) + (2 / 4) * (1 / 3) + (3 / 5) * (1 / 3)
    assert average_precision(scores, targets) == pytest.approx(expected)
    assert average_precision(scores[::-1], targets[::-1]) == pytest.approx(expected)


def test_an_all_positive_tag_gets_one() -> None:
    assert average_precision(np.array([0.1, 0.7, 0.7]), np.ones(3)) == pytest.approx(1.0)


def test_mean_average_precision_of_the_frequency_prior_is_the_mean_positive_rate() -> None:
    targets = np.array([[1, 0, 1], [0, 0, 1], [0, 1, 1], [1, 0, 1]])
    prior = np.broadcast_to(np.array([0.5, 0.25, 0.9]), targets.shape)
    # Tag 0: 2/4, tag 1: 1/4, tag 2 (all positive): 1.
    assert mean_average_precision(prior, targets) == pytest.approx((0.5 + 0.25 + 1) / 3)


def test_counts_and_scores_from_counts() -> None:
    predicted = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=bool)
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    counts = confusion_counts(predicted, targets)
    assert counts.tolist() == [[1, 1, 1], [2, 0, 0], [0, 0, 0]]
    precision, recall, f1 = precision_recall_f(counts)
    assert precision.tolist() == [0.5, 1.0, 0.0]  # an empty ratio counts as 0
    assert recall.tolist() == [0.5, 1.0, 0.0]
    assert f1 == pytest.approx([0.5, 1.0, 0.0])
    _, _, f2 = precision_recall_f(np.array([1, 3, 0]), beta=2.0)
    # P 1/4, R 1: F2 = 5 * 1/4 / (4 * 1/4 + 1) = 5/8.
    assert f2 == pytest.approx(5 / 8)


def test_empty_predictions() -> None:
    assert confusion_counts(np.zeros((0, 2), dtype=bool), np.zeros((0, 2))).tolist() == [
        [0, 0, 0],
        [0, 0, 0],
    ]
    assert math.isnan(mean_average_precision(np.zeros((0, 2)), np.zeros((0, 2))))
