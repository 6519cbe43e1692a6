"""Tests for --eval's numbers (alti2v.evaluate.judge, alti2v.evaluate.calibration) on hand-worked
cases: ties, tags without positives, thresholds with a known optimum, MCut, calibration error,
temperature, the rating as a choice, and the bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alti2v.evaluate.calibration import (
    fbeta_thresholds,
    fit_temperature,
    histogram_threshold,
    reliability,
    scaled,
    value_histogram,
)
from alti2v.evaluate.judge import Settings, column_average_precision, judge
from alti2v.evaluate.run import fitting_half
from alti2v.model.metrics import per_tag_average_precision
from alti2v.tag.thresholds import mcut_mask

# Ranked scores with their labels; F-beta at each threshold (inclusive):
#   0.9: P 1,   R 1/3 | 0.8: P 1, R 2/3 | 0.7: P 2/3, R 2/3 | 0.3: P 3/4, R 1 | 0.2: P 3/5, R 1
# F1 is highest at 0.3 (6/7), F0.5 at 0.8 (10/11), F2 at 0.3 (15/16).
KNOWN_SCORES = np.array([0.9, 0.8, 0.7, 0.3, 0.2])
KNOWN_LABELS = np.array([1, 1, 0, 1, 0], dtype=bool)


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_average_precision_equals_scikit_learn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    actual = rng.random((60, 9)) < 0.3
    scores = np.round(rng.random((60, 9)) + actual * 0.3, 1)  # rounded: many ties
    scores[:, 0] = 0.5  # a constant column
    actual[:, 1] = False  # a column without positives
    actual[:, 2] = True  # an all-positive column
    expected = per_tag_average_precision(scores, actual)
    np.testing.assert_allclose(column_average_precision(scores, actual), expected, equal_nan=True)
    assert column_average_precision(scores, actual)[0] == pytest.approx(actual[:, 0].mean())


def test_fbeta_thresholds_find_the_known_optima() -> None:
    fitted = fbeta_thresholds(KNOWN_SCORES, KNOWN_LABELS, (1.0, 0.5, 2.0))
    assert fitted == pytest.approx([0.3, 0.8, 0.3])


def test_fbeta_thresholds_need_a_positive() -> None:
    assert fbeta_thresholds(KNOWN_SCORES, np.zeros(5, dtype=bool), (1.0, 2.0)) == [None, None]


def test_histogram_threshold_agrees_on_float16_values() -> None:
    scores16 = KNOWN_SCORES.astype(np.float16)
    histogram = value_histogram(scores16, KNOWN_LABELS)
    assert histogram.sum() == 5 and histogram[1].sum() == 3
    assert histogram_threshold(histogram) == float(np.float16(0.3))
    assert histogram_threshold(value_histogram(scores16, np.zeros(5, dtype=bool))) is None


def test_mcut_cuts_at_the_largest_gap() -> None:
    probabilities = np.array([[0.95, 0.9, 0.4, 0.35, 0.1], [0.3, 0.2, 0.25, 0.9, 0.85]])
    # Row 0: gaps 0.05, 0.5, 0.05, 0.25 -> keep the first two. Row 1: sorted 0.9 0.85 0.3 0.25
    # 0.2, largest gap 0.55 after 0.85 -> keep tags 3 and 4.
    assert mcut_mask(probabilities).tolist() == [
        [True, True, False, False, False],
        [False, False, False, True, True],
    ]


def test_reliability_and_ece_by_hand() -> None:
    # Bin [0.2, 0.3): two pairs at 0.25, one positive -> gap 0.25.
    # Bin [0.7, 0.8): two pairs at 0.75, both positive -> gap 0.25. ECE 0.25.
    scores = np.array([0.25, 0.25, 0.75, 0.75], dtype=np.float16)
    curve = reliability(value_histogram(scores, np.array([1, 0, 1, 1], dtype=bool)))
    assert curve["ece"] == pytest.approx(0.25)
    assert curve["count"][2] == 2 and curve["count"][7] == 2
    assert curve["frequency"][2] == 0.5 and curve["confidence"][7] == 0.75
    assert curve["confidence"][0] is None  # an empty bin


def test_fitted_temperature_recovers_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, 200_000)
    actual = rng.random(200_000) < 1 / (1 + np.exp(-logits))
    overconfident = scaled(1 / (1 + np.exp(-logits)), 0.5)  # logits doubled
    temperature = fit_temperature(value_histogram(overconfident.astype(np.float16), actual))
    assert temperature == pytest.approx(2.0, rel=0.05)
    before = reliability(value_histogram(overconfident.astype(np.float16), actual))["ece"]
    after = reliability(value_histogram(overconfident.astype(np.float16), actual), temperature)
    assert after["ece"] < before / 3


def test_fitting_half_is_fixed_and_about_half() -> None:
    halves = [fitting_half(str(post_id)) for post_id in range(2000)]
    assert halves == [fitting_half(str(post_id)) for post_id in range(2000)]
    assert 900 < sum(halves) < 1100


def tiny_case() -> tuple:
    rng = np.random.default_rng(3)
    tags = ["a", "b", "never", "rating:general", "rating:explicit"]
    categories = ["general", "character", "general", "rating", "rating"]
    actual = np.zeros((40, 5), dtype=bool)
    actual[:, 0] = rng.random(40) < 0.5
    actual[:, 1] = rng.random(40) < 0.3
    explicit = rng.random(40) < 0.25
    actual[:, 3], actual[:, 4] = ~explicit, explicit
    scores = np.clip(actual * 0.4 + rng.random((40, 5)) * 0.6, 0, 1).astype(np.float16)
    fit_half = np.arange(40) % 2 == 0
    return scores, actual, fit_half, tags, categories


def test_judge_summary_on_a_tiny_case() -> None:
    scores, actual, fit_half, tags, categories = tiny_case()
    counts = np.array([5, 50, 500, 1, 0])
    result = judge(scores, actual, fit_half, tags, categories, counts, Settings("f1", 0.5, 50))
    summary = result.summary
    expected_ap = per_tag_average_precision(scores.astype(np.float32), actual)
    assert math.isnan(result.average_precision[2])  # "never" has no positive: left out
    assert summary["map"] == pytest.approx(np.nanmean(expected_ap))
    assert summary["tags_with_positives"] == 4
    low, high = summary["map_ci95"]
    assert low < summary["map"] < high
    assert set(summary["rules"]) == {"constant", "mcut", "f0.5", "f1", "f2", "category"}
    f1 = summary["rules"]["f1"]
    assert f1["micro_f1_ci95"][0] <= f1["micro_f1"] <= f1["micro_f1_ci95"][1]
    assert set(f1["by_category"]) == {"general", "character", "rating"}
    assert summary["map_by_frequency"]["1-9"]["tags"] == 2  # counts 5 and 1
    assert summary["map_by_frequency"]["0"]["tags"] == 1
    # Thresholds refitted on all posts: the per-tag F1 optimum of each column.
    (expected_a,) = fbeta_thresholds(scores[:, 0].astype(np.float32), actual[:, 0], [1.0])
    assert result.thresholds["f1"]["a"] == pytest.approx(expected_a)
    assert result.thresholds["f1"]["never"] == 0.5  # nothing to fit on: the constant
    np.testing.assert_allclose(result.chosen, list(result.thresholds["f1"].values()))
    # Rating: argmax of the two rating columns against the true one.
    truth = actual[:, 4].astype(int)
    guess = (scores[:, 4] > scores[:, 3]).astype(int)
    rating = summary["rating"]
    assert rating["accuracy"] == pytest.approx(np.mean(truth == guess))
    assert np.sum(rating["confusion"]) == 40
    assert rating["confusion"][1][1] == int(np.sum((truth == 1) & (guess == 1)))


def test_judge_scores_the_constant_prior_with_ties() -> None:
    _, actual, fit_half, tags, categories = tiny_case()
    prior = np.broadcast_to(actual.mean(axis=0).astype(np.float16), actual.shape)
    result = judge(prior, actual, fit_half, tags, categories, np.ones(5), Settings(bootstrap=10))
    np.testing.assert_allclose(
        result.average_precision[[0, 1, 3, 4]], actual.mean(axis=0)[[0, 1, 3, 4]]
    )


def test_an_empty_report_half_gives_no_interval() -> None:
    scores, actual, _, tags, categories = tiny_case()
    everything = np.ones(40, dtype=bool)
    result = judge(scores, actual, everything, tags, categories, np.ones(5), Settings(bootstrap=5))
    assert result.summary["report_images"] == 0
    assert result.summary["rules"]["f1"]["micro_f1_ci95"] is None
    assert result.summary["rules"]["f1"]["micro_f1"] == 0.0


def rare_tags_case(seed: int = 5) -> tuple:
    """60 images, 30 tags of which 24 have one or two positives, each ranked poorly: the case
    where resamples that lose a rare tag's positives used to shift every interval upwards."""
    rng = np.random.default_rng(seed)
    num_images, num_tags = 60, 30
    actual = np.zeros((num_images, num_tags), dtype=bool)
    for tag in range(num_tags):
        positives = rng.integers(1, 3) if tag >= 6 else 20
        actual[rng.choice(num_images, positives, replace=False), tag] = True
    scores = rng.random((num_images, num_tags)) + actual * np.where(
        np.arange(num_tags) < 6, 0.6, 0.1
    )
    tags = [f"t{tag}" for tag in range(num_tags)]
    return (np.clip(scores / 1.6, 0, 1).astype(np.float16), actual, np.arange(num_images) % 2 == 0,
            tags, ["general"] * num_tags)  # fmt: skip


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_the_map_interval_is_centred_on_the_estimate_with_rare_tags(seed: int) -> None:
    scores, actual, fit_half, tags, categories = rare_tags_case(seed)
    summary = judge(scores, actual, fit_half, tags, categories, np.ones(30),
                    Settings(bootstrap=200, seed=seed)).summary  # fmt: skip
    low, high = summary["map_ci95"]
    assert low < summary["map"] < high
    assert summary["map"] - low == pytest.approx(high - summary["map"])  # not clipped here
    f1 = summary["rules"]["f1"]
    low, high = f1["micro_f1_ci95"]
    assert low <= f1["micro_f1"] <= high
