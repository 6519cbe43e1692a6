"""Held-out quality of multi-label predictions: mAP, micro-F1 and binary cross-entropy.

All take `scores` and `targets` as (images, tags) arrays; numpy only, so the benchmark and the
training loop report the same numbers on any backend.
"""

from __future__ import annotations

import numpy as np


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """AP of one tag: mean precision at the rank of each positive (ties broken by order)."""
    order = np.argsort(-scores, kind="stable")
    hits = targets[order] > 0
    if not hits.any():
        return float("nan")
    precision_at_hit = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hit.mean())


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean AP over the tags that have at least one positive among the images."""
    present = np.flatnonzero(targets.sum(axis=0) > 0)
    if present.size == 0:
        return float("nan")
    return float(np.mean([average_precision(scores[:, tag], targets[:, tag]) for tag in present]))


def micro_f1(scores: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> float:
    predicted = scores >= threshold
    actual = targets > 0
    true_positives = np.logical_and(predicted, actual).sum()
    denominator = predicted.sum() + actual.sum()
    return float(2 * true_positives / denominator) if denominator else float("nan")


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
