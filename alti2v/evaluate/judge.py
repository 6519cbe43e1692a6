"""The judgement of one score matrix: every number of `--eval`, computed in bounded memory.

`judge` reads an (images, tags) float16 score matrix and its boolean targets, usually memory
-mapped from disk, a block of columns or of rows at a time, never the whole matrix as floats:

- mAP over tags with a positive, with a bootstrap 95% interval (images resampled, seeded), per
  category and per bucket of training frequency;
- thresholds fitted on one half of the posts (`fit_half`) and every rule scored on the other:
  micro and macro precision, recall and F1 overall and per category, and a bootstrap interval on
  micro-F1; the thresholds refitted on all posts are what `thresholds.json` saves;
- calibration (ECE, reliability) and a temperature fitted on the fitting half;
- the rating as a 4-way choice (accuracy, confusion matrix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from sklearn.metrics import confusion_matrix

from alti2v import defaults
from alti2v.data.posts import RATING_TAGS
from alti2v.data.vocabulary import TAG_CATEGORIES
from alti2v.evaluate.calibration import (
    HISTOGRAM_BINS,
    fbeta_thresholds,
    fit_temperature,
    histogram_threshold,
    reliability,
    value_histogram,
)
from alti2v.model.metrics import per_tag_average_precision, precision_recall_f
from alti2v.tag.thresholds import FITTED_RULES, RULES, tag_mask

COLUMN_BLOCK = 256  # tags per block in the column passes (images x 256 float32 at a time)
ROW_BLOCK = 512  # images per block in the row passes (512 x tags float32 at a time)
FREQUENCY_BUCKETS = (1, 10, 100, 1_000, 10_000)  # lower edges, in training posts per tag
RULE_BETA = {"f0.5": 0.5, "f1": 1.0, "f2": 2.0}  # the per-tag F-beta rules; category uses F1


@dataclass(frozen=True)
class Settings:
    rule: str = "constant"  # the rule whose thresholds per_tag.csv and the gallery use
    threshold: float = defaults.EVAL_THRESHOLD  # the constant rule's threshold
    bootstrap: int = defaults.BOOTSTRAP  # resamples for the confidence intervals
    seed: int = defaults.SEED


@dataclass
class Judgement:
    summary: dict  # JSON-ready: every aggregate number
    average_precision: np.ndarray  # (tags,) on all posts, NaN without a positive
    support: np.ndarray  # (tags,) positives among all posts
    precision: np.ndarray  # (tags,) of the chosen rule, on the report half
    recall: np.ndarray
    f1: np.ndarray
    thresholds: dict[str, dict[str, float]]  # fitted rules refitted on all posts: {rule: {tag: t}}
    chosen: np.ndarray | None  # (tags,) thresholds of the chosen rule (None for mcut)
    # What the report half is scored with: the chosen rule's thresholds fitted on the fitting
    # half (a float for constant, None for mcut), for a paired comparison on fewer tags.
    report_thresholds: np.ndarray | float | None = None
    # (resamples, tags) AP of each tag in each bootstrap resample (its AP on all images where the
    # resample lost its positives; NaN without any): mAP over any subset of tags, per resample.
    bootstrap_ap: np.ndarray | None = None
    temperature: float = 1.0


def judge(
    scores: np.ndarray,
    targets: np.ndarray,
    fit_half: np.ndarray,
    tags: list[str],
    categories: list[str],
    train_counts: np.ndarray,
    settings: Settings,
) -> Judgement:
    """Everything `--eval` reports about one (images, tags) score matrix."""
    columns = _column_pass(scores, targets, fit_half, categories, settings)
    fitting = {rule: _fitted(columns, rule, categories, settings) for rule in FITTED_RULES}
    refitted = {rule: _fitted(columns, rule, categories, settings, "all") for rule in FITTED_RULES}
    report_rows = np.flatnonzero(~fit_half)
    rules = _rule_pass(scores, targets, report_rows, fitting, settings)
    calibration = _calibration(columns["histograms"])
    average_precision = columns["average_precision"]
    summary = {
        "images": len(scores),
        "fitting_images": int(fit_half.sum()),
        "report_images": len(report_rows),
        "tags": len(tags),
        "tags_with_positives": int(np.sum(~np.isnan(average_precision))),
        "map": nanmean(average_precision),
        "map_ci95": interval(columns["bootstrap_map"], nanmean(average_precision)),
        "map_by_category": _map_by(average_precision, categories, TAG_CATEGORIES),
        "map_by_frequency": _map_by_frequency(average_precision, train_counts),
        "rules": {rule: _rule_summary(result, categories) for rule, result in rules.items()},
        "chosen_rule": settings.rule,
        "calibration": calibration,
        "rating": _rating(scores, targets, tags),
    }
    chosen = rules[settings.rule]
    precision, recall, f1 = precision_recall_f(chosen["per_tag"])
    thresholds = {
        rule: dict(zip(tags, map(float, values), strict=True)) for rule, values in refitted.items()
    }
    chosen_thresholds = {
        "constant": np.full(len(tags), settings.threshold),
        "mcut": None,
        **refitted,
    }[settings.rule]
    return Judgement(
        summary, average_precision, columns["support"], precision, recall, f1,
        thresholds, chosen_thresholds, _report_thresholds(fitting, settings)[settings.rule],
        columns["bootstrap_ap"], calibration["temperature"],
    )  # fmt: skip


def _column_pass(scores, targets, fit_half, categories, settings) -> dict:
    """Per-tag AP, support and F-beta thresholds; bootstrap mAPs; per-category histograms."""
    num_images, num_tags = scores.shape
    category_index = np.array([TAG_CATEGORIES.index(category) for category in categories])
    histograms = np.zeros((2, len(TAG_CATEGORIES), 2, HISTOGRAM_BINS), dtype=np.int64)
    average_precision = np.full(num_tags, np.nan)
    support = np.zeros(num_tags, dtype=np.int64)
    per_tag_thresholds = {
        (part, rule): np.full(num_tags, np.nan) for part in ("fit", "all") for rule in RULE_BETA
    }
    ap_sums = np.zeros(settings.bootstrap)
    ap_counts = np.zeros(settings.bootstrap)
    bootstrap_ap = np.full((settings.bootstrap, num_tags), np.nan)
    for start in range(0, num_tags, COLUMN_BLOCK):
        block = slice(start, min(start + COLUMN_BLOCK, num_tags))
        block_scores16 = np.asarray(scores[:, block])
        block_scores = block_scores16.astype(np.float32)
        actual = np.asarray(targets[:, block], dtype=bool)
        average_precision[block] = per_tag_average_precision(block_scores, actual)
        support[block] = actual.sum(axis=0)
        for offset in range(block_scores.shape[1]):
            tag = start + offset
            for part, rows in (("fit", fit_half), ("all", slice(None))):
                fitted = fbeta_thresholds(
                    block_scores[rows, offset], actual[rows, offset], RULE_BETA.values()
                )
                for rule, threshold in zip(RULE_BETA, fitted, strict=True):
                    per_tag_thresholds[part, rule][tag] = _or_nan(threshold)
        for half, rows in enumerate((fit_half, ~fit_half)):
            for category in np.unique(category_index[block]):
                chosen = category_index[block] == category
                histograms[half, category] += value_histogram(
                    block_scores16[rows][:, chosen], actual[rows][:, chosen]
                )
        # A tag without a positive has no AP in any resample: only the others are ranked.
        present = support[block] > 0
        for resample in range(settings.bootstrap):
            rows = resample_rows(settings.seed, resample, num_images)
            ap = np.full(len(present), np.nan)
            ap[present] = column_average_precision(block_scores[rows][:, present],
                                                   actual[rows][:, present])  # fmt: skip
            # The tag set stays the estimate's: a tag whose positives all dropped out of this
            # resample keeps its AP on all images. Left out, rare tags (often the hard ones)
            # would leave the mean more often than others and shift every resample upwards.
            ap = np.where(np.isnan(ap), average_precision[block], ap)
            bootstrap_ap[resample, block] = ap
            ap_sums[resample] += np.nansum(ap)
            ap_counts[resample] += np.sum(~np.isnan(ap))
    with np.errstate(invalid="ignore", divide="ignore"):
        bootstrap_map = ap_sums / ap_counts
    return {
        "average_precision": average_precision,
        "support": support,
        "per_tag_thresholds": per_tag_thresholds,
        "histograms": histograms,
        "bootstrap_map": bootstrap_map,
        "bootstrap_ap": bootstrap_ap,
    }


def column_average_precision(scores: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """AP of every column at once, tie-aware exactly as scikit-learn's average_precision_score
    (tests check they agree); NaN for columns without a positive. The bootstrap needs this
    vectorised form: one scikit-learn call per tag and resample would take minutes."""
    num_images = scores.shape[0]
    order = np.argsort(-scores, axis=0, kind="stable")
    ranked_scores = np.take_along_axis(scores, order, axis=0)
    ranked_actual = np.take_along_axis(actual, order, axis=0)
    true_positives = np.cumsum(ranked_actual, axis=0, dtype=np.float64)
    # A threshold sits at the last image of each group of tied scores.
    group_end = np.ones_like(ranked_scores, dtype=bool)
    group_end[:-1] = ranked_scores[:-1] != ranked_scores[1:]
    at_end = np.where(group_end, true_positives, 0.0)
    previous = np.zeros_like(at_end)
    previous[1:] = np.maximum.accumulate(at_end, axis=0)[:-1]  # true positives one group up
    precision = true_positives / np.arange(1, num_images + 1)[:, None]
    gained = np.where(group_end, (true_positives - previous) * precision, 0.0).sum(axis=0)
    positives = true_positives[-1] if num_images else np.zeros(scores.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(positives > 0, gained / positives, np.nan)


def resample_rows(seed: int, resample: int, num_images: int) -> np.ndarray:
    """The image indices of one bootstrap resample: the same in every block of a run, and for
    every scorer of as many images, so that two scorers' resamples are paired."""
    return np.random.default_rng([seed, resample]).integers(0, num_images, num_images)


def _fitted(columns, rule, categories, settings, part: str = "fit") -> np.ndarray:
    """Thresholds of a fitted rule; a tag with no positive to fit on keeps the constant."""
    if rule in RULE_BETA:
        fitted = columns["per_tag_thresholds"][part, rule].copy()
    else:
        histograms = columns["histograms"]
        pooled = histograms[0] if part == "fit" else histograms.sum(axis=0)
        by_category = [histogram_threshold(histogram) for histogram in pooled]
        fitted = np.array(
            [_or_nan(by_category[TAG_CATEGORIES.index(category)]) for category in categories]
        )
    fitted[np.isnan(fitted)] = settings.threshold
    return fitted


def _report_thresholds(fitting: dict, settings: Settings) -> dict:
    """Each rule's thresholds on the report half: the fitted ones from the fitting half."""
    return {"constant": settings.threshold, "mcut": None, **fitting}


def _rule_pass(scores, targets, rows, fitting, settings) -> dict:
    """Per-tag and per-image (tp, fp, fn) counts of every rule on `rows`."""
    num_tags = scores.shape[1]
    results = {
        rule: {"per_tag": np.zeros((num_tags, 3), np.int64), "per_image": []} for rule in RULES
    }
    thresholds = _report_thresholds(fitting, settings)
    for start in range(0, len(rows), ROW_BLOCK):
        chosen = rows[start : start + ROW_BLOCK]
        block_scores = np.asarray(scores[chosen], dtype=np.float32)
        actual = np.asarray(targets[chosen], dtype=bool)
        for rule in RULES:
            predicted = tag_mask(block_scores, rule, thresholds[rule])
            counts = cell_counts(predicted, actual)  # (images, tags, 3)
            results[rule]["per_tag"] += counts.sum(axis=0)
            results[rule]["per_image"].append(counts.sum(axis=1))
    for result in results.values():
        parts = result["per_image"]
        result["per_image"] = np.concatenate(parts) if parts else np.zeros((0, 3), np.int64)
        result["bootstrap"] = bootstrap_micro_f1(result["per_image"], settings)
    return results


def cell_counts(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """(..., 3) true positive, false positive, false negative of each (image, tag) cell."""
    return np.stack([predicted & actual, predicted & ~actual, ~predicted & actual], axis=-1)


def bootstrap_micro_f1(per_image: np.ndarray, settings: Settings) -> np.ndarray:
    """Micro-F1 of each bootstrap resample of (images, 3) per-image counts."""
    num_images = len(per_image)
    if num_images == 0:
        return np.full(settings.bootstrap, np.nan)
    totals = [
        per_image[resample_rows(settings.seed, resample, num_images)].sum(axis=0)
        for resample in range(settings.bootstrap)
    ]
    return precision_recall_f(np.array(totals).reshape(-1, 3))[2]


def _rule_summary(result: dict, categories: list[str]) -> dict:
    per_tag = result["per_tag"]
    summary = _decisions(per_tag)
    summary["micro_f1_ci95"] = interval(result["bootstrap"], summary["micro_f1"])
    summary["by_category"] = {
        category: _decisions(per_tag[np.array(categories) == category])
        for category in TAG_CATEGORIES
        if category in categories
    }
    return summary


def _decisions(per_tag: np.ndarray) -> dict:
    """Micro scores of the pooled counts; macro scores over tags with a positive."""
    micro = precision_recall_f(per_tag.sum(axis=0))
    present = per_tag[:, 0] + per_tag[:, 2] > 0
    macro = precision_recall_f(per_tag[present]) if present.any() else (np.nan,) * 3
    names = ("precision", "recall", "f1")
    return {
        **{f"micro_{name}": float(value) for name, value in zip(names, micro, strict=True)},
        **{f"macro_{name}": nanmean(value) for name, value in zip(names, macro, strict=True)},
    }


def _calibration(histograms: np.ndarray) -> dict:
    """ECE before and after a temperature fitted on the fitting half, both on the report half."""
    pooled = histograms.sum(axis=1)  # (halves, 2, bins)
    temperature = fit_temperature(pooled[0])
    before = reliability(pooled[1])
    after = reliability(pooled[1], temperature)
    improves = math.isfinite(before["ece"]) and after["ece"] < before["ece"]
    return {
        "ece": before["ece"],
        "fitted_temperature": temperature,
        "ece_after_temperature": after["ece"],
        "temperature": temperature if improves else 1.0,
        "temperature_improves": improves,
        "reliability": reliability(pooled.sum(axis=0)),
    }


def _rating(scores, targets, tags: list[str]) -> dict | None:
    """Accuracy and confusion matrix of the rating as the argmax over the rating tags."""
    names = [tag for tag in RATING_TAGS.values() if tag in tags]
    if len(names) < 2:
        return None
    columns = [tags.index(name) for name in names]
    truth, guess = [], []
    for start in range(0, len(scores), ROW_BLOCK):
        actual = np.asarray(targets[start : start + ROW_BLOCK][:, columns], dtype=bool)
        block_scores = np.asarray(scores[start : start + ROW_BLOCK][:, columns], dtype=np.float32)
        rated = actual.sum(axis=1) == 1  # one true rating: the others cannot be scored as a choice
        truth.append(np.argmax(actual[rated], axis=1))
        guess.append(np.argmax(block_scores[rated], axis=1))
    truth, guess = np.concatenate(truth), np.concatenate(guess)
    if not len(truth):
        return None
    return {
        "labels": names,
        "images": len(truth),
        "accuracy": float(np.mean(truth == guess)),
        "confusion": confusion_matrix(truth, guess, labels=range(len(names))).tolist(),
    }


def _map_by(average_precision, groups: list[str], names) -> dict:
    groups = np.array(groups)
    return {
        name: {
            "map": nanmean(average_precision[groups == name]),
            "tags": int(np.sum(groups == name)),
        }
        for name in names
        if np.any(groups == name)
    }


def _map_by_frequency(average_precision, train_counts: np.ndarray) -> dict:
    edges = [*FREQUENCY_BUCKETS, math.inf]
    labels = [
        f"{low}-{high - 1}" if math.isfinite(high) else f"{low}+" for low, high in pairwise(edges)
    ]
    bucket = np.searchsorted(np.array(FREQUENCY_BUCKETS), train_counts, side="right") - 1
    groups = [labels[index] if index >= 0 else "0" for index in bucket]
    return _map_by(average_precision, groups, ["0", *labels])


def interval(
    values: np.ndarray, estimate: float | None, bounds: tuple[float, float] = (0.0, 1.0)
) -> list[float] | None:
    """The 95% interval around `estimate` from its bootstrap `values`: estimate +- 1.96 of
    their standard deviation, within `bounds` (a score's [0, 1]; a difference's [-1, 1]).
    Centred on what it estimates: the resamples' percentiles are not, where resampling shifts a
    statistic (AP counts a drawn-twice positive twice), and then may not even hold the
    estimate."""
    values = values[np.isfinite(values)]
    if len(values) < 2 or estimate is None or not math.isfinite(estimate):
        return None
    half_width = 1.96 * float(np.std(values, ddof=1))
    low, high = bounds
    return [max(low, estimate - half_width), min(high, estimate + half_width)]


def nanmean(values) -> float | None:
    """The mean of the finite values; None when there is none (JSON's null)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value
