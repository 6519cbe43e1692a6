"""Held-out quality of multi-label predictions: mAP, precision, recall, F-beta, cross-entropy.

A thin layer over scikit-learn, so that every number agrees with the reference definitions and
ties are scored correctly (tied scores share one threshold: a constant score gets AP equal to
the positive rate). `scores` and `targets` are (images, tags) arrays; `--train`'s per-epoch line,
`--eval` and the benchmarks all report through this module.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import average_precision_score, multilabel_confusion_matrix


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """AP of one tag (area under the step precision-recall curve); NaN without a positive."""
    actual = np.asarray(targets) > 0
    if not actual.any():
        return float("nan")
    return float(average_precision_score(actual, scores))


def per_tag_average_precision(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """AP of each column; NaN for tags without a positive among the images."""
    return np.array(
        [average_precision(scores[:, tag], targets[:, tag]) for tag in range(scores.shape[1])]
    )


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean AP over the tags that have at least one positive among the images."""
    per_tag = per_tag_average_precision(scores, targets)
    return float(np.nanmean(per_tag)) if not np.isnan(per_tag).all() else float("nan")


def confusion_counts(predicted: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(tags, 3) counts of true positives, false positives and false negatives per column."""
    predicted, actual = np.asarray(predicted, dtype=bool), np.asarray(targets) > 0
    if predicted.shape[0] == 0:
        return np.zeros((predicted.shape[1], 3), dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        matrices = multilabel_confusion_matrix(
            actual, predicted
        )  # (tags, 2, 2): [[tn, fp], [fn, tp]]
    return np.stack([matrices[:, 1, 1], matrices[:, 0, 1], matrices[:, 1, 0]], axis=1)


def precision_recall_f(counts: np.ndarray, beta: float = 1.0) -> tuple[np.ndarray, ...]:
    """Precision, recall and F-beta from (..., 3) true-positive/false-positive/false-negative
    counts, as scikit-learn defines them with zero_division=0 (an empty ratio counts as 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    true_positives, false_positives, false_negatives = (
        counts[..., 0],
        counts[..., 1],
        counts[..., 2],
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(true_positives / (true_positives + false_positives))
        recall = np.nan_to_num(true_positives / (true_positives + false_negatives))
    f_score = f_beta(precision, recall, beta)
    return precision, recall, f_score


def f_beta(precision: np.ndarray, recall: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """The weighted harmonic mean of precision and recall (0 where both are 0)."""
    weight = beta * beta
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num((1 + weight) * precision * recall / (weight * precision + recall))


def micro_f1(scores: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of all (image, tag) decisions at `threshold` (inclusive); NaN when nothing is
    predicted and nothing is present."""
    counts = confusion_counts(np.asarray(scores) >= threshold, targets).sum(axis=0)
    if counts.sum() == 0:
        return float("nan")
    return float(precision_recall_f(counts)[2])


def binary_cross_entropy(scores: np.ndarray, targets: np.ndarray) -> float:
    clipped = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    losses = targets * np.log(clipped) + (1 - targets) * np.log(1 - clipped)
    return float(-losses.mean())


def summarize(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    return {
        "loss": binary_cross_entropy(scores, targets),
        "map": mean_average_precision(scores, targets),
        "micro_f1": micro_f1(scores, targets),
    }
