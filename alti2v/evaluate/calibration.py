"""From scores to decisions and probabilities: fitted thresholds, calibration error, temperature.

Scores reach `--eval` as float16 (see `alti2v.evaluate.run`), which has only 15,361 values in
[0, 1]. Counting positives and negatives per float16 value (`value_histogram`) therefore keeps
every pooled statistic exact in bounded memory: a threshold over a whole category, the expected
calibration error and the temperature fit read only these counts, never the (images, tags)
matrix. Per-tag thresholds come from scikit-learn's precision-recall curve of each tag's column.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import precision_recall_curve

from alti2v.model.metrics import f_beta, precision_recall_f

HISTOGRAM_BINS = 0x3C00 + 1  # float16 bit patterns of 0.0 .. 1.0, in increasing order of value
BIN_VALUES = np.arange(HISTOGRAM_BINS, dtype=np.uint16).view(np.float16).astype(np.float64)
ECE_BINS = 10  # equal-width confidence bins of the reliability diagram and the ECE
# Logits of float16 probabilities: 1 - 2**-11 is the largest value below 1.0, 2**-24 the
# smallest above 0; rounded 0s and 1s are pulled in by as much so that no logit is infinite.
_LOW, _HIGH = 2.0**-24, 1 - 2.0**-11
TEMPERATURE_RANGE = (0.05, 20.0)  # searched on a log scale


def value_histogram(scores16: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """(2, HISTOGRAM_BINS) counts of negatives (row 0) and positives (row 1) per float16 value."""
    bits = np.ascontiguousarray(scores16, dtype=np.float16).view(np.uint16).ravel().astype(np.int64)
    bits += HISTOGRAM_BINS * np.asarray(actual, dtype=bool).ravel()
    return np.bincount(bits, minlength=2 * HISTOGRAM_BINS).reshape(2, HISTOGRAM_BINS)


def fbeta_thresholds(scores: np.ndarray, actual: np.ndarray, betas) -> list[float | None]:
    """For each beta, the score at which one tag's F-beta is highest (the lowest such score on a
    tie), or None when the tag has no positive to fit on. One precision-recall curve serves all."""
    if not np.any(actual):
        return [None for _ in betas]
    precision, recall, thresholds = precision_recall_curve(actual, scores)
    # The last point (precision 1, recall 0) has no threshold; thresholds ascend, so argmax
    # takes the lowest of equally good ones.
    return [
        float(thresholds[int(np.argmax(f_beta(precision[:-1], recall[:-1], beta)))])
        for beta in betas
    ]


def histogram_threshold(histogram: np.ndarray, beta: float = 1.0) -> float | None:
    """The pooled F-beta-optimal threshold of a (2, bins) histogram, None without positives."""
    negatives, positives = histogram
    if positives.sum() == 0:
        return None
    # At threshold value v everything at or above v is predicted: counts from the top down.
    true_positives = np.cumsum(positives[::-1])[::-1]
    false_positives = np.cumsum(negatives[::-1])[::-1]
    false_negatives = positives.sum() - true_positives
    counts = np.stack([true_positives, false_positives, false_negatives], axis=-1)
    f_score = precision_recall_f(counts, beta)[2]
    f_score[(negatives + positives) == 0] = -1  # only values that occur are thresholds
    return float(BIN_VALUES[int(np.argmax(f_score))])


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities after dividing their logits by `temperature`."""
    clipped = np.clip(probabilities, _LOW, _HIGH)
    logits = np.log(clipped) - np.log1p(-clipped)
    return 1 / (1 + np.exp(-logits / temperature))


def reliability(histogram: np.ndarray, temperature: float = 1.0) -> dict:
    """Per confidence bin: count, mean predicted probability, share of positives; and the ECE
    (count-weighted mean gap between the last two)."""
    negatives, positives = histogram.astype(np.float64)
    probability = scaled(BIN_VALUES, temperature) if temperature != 1 else BIN_VALUES
    bins = np.minimum((probability * ECE_BINS).astype(int), ECE_BINS - 1)
    count = np.bincount(bins, negatives + positives, minlength=ECE_BINS)
    confidence_sum = np.bincount(bins, (negatives + positives) * probability, minlength=ECE_BINS)
    positive_sum = np.bincount(bins, positives, minlength=ECE_BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence, frequency = confidence_sum / count, positive_sum / count
    total = count.sum()
    gaps = np.where(count > 0, np.abs(frequency - confidence), 0.0)
    ece = float((count * gaps).sum() / total) if total else float("nan")
    return {
        "ece": ece,
        "count": count.astype(int).tolist(),
        "confidence": _finite_or_none(confidence),
        "frequency": _finite_or_none(frequency),
    }


def fit_temperature(histogram: np.ndarray) -> float:
    """The temperature that minimises the binary cross-entropy of a (2, bins) histogram."""
    negatives, positives = histogram.astype(np.float64)
    used = (negatives + positives) > 0
    negatives, positives, values = negatives[used], positives[used], BIN_VALUES[used]
    if positives.sum() == 0 or negatives.sum() == 0:
        return 1.0

    def loss(log_temperature: float) -> float:
        probability = np.clip(scaled(values, math.exp(log_temperature)), 1e-12, 1 - 1e-12)
        return -float(positives @ np.log(probability) + negatives @ np.log1p(-probability))

    low, high = (math.log(bound) for bound in TEMPERATURE_RANGE)
    return float(math.exp(minimize_scalar(loss, bounds=(low, high), method="bounded").x))


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    return [float(value) if math.isfinite(value) else None for value in values]
