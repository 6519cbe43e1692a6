"""Two models judged on the same posts, paired: is the second one better than the first?

For a pair (A, B) of `Contestant`s, on the tags both judge (matched by name,
`alti2v.evaluate.names`), `compare` gives each one's mAP (over all posts) and micro-F1 (the
chosen rule on the report half, thresholds fitted on the other, as `alti2v.evaluate.judge`
scores them) and the difference B - A with a paired bootstrap 95% interval: every resample
draws the same images for both (`judge.resample_rows`), so what the two share, the hard and
easy posts, cancels out of the difference, and the interval is much narrower than the two
models' own intervals suggest. It is centred on the estimate (`judge.interval`), with each
tag's AP over all images kept where a resample loses that tag's positives. A difference is
called only when its interval excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alti2v.evaluate.judge import (
    ROW_BLOCK,
    Judgement,
    Settings,
    bootstrap_micro_f1,
    cell_counts,
    interval,
    nanmean,
)
from alti2v.evaluate.names import Columns
from alti2v.model.metrics import precision_recall_f
from alti2v.tag.thresholds import tag_mask

DIFFERENCE_BOUNDS = (-1.0, 1.0)


@dataclass(frozen=True)
class Contestant:
    """One judged model: its (images, judged tags) scores and targets, and their judgement."""

    name: str
    scores: np.ndarray
    targets: np.ndarray
    columns: Columns
    judgement: Judgement


def compare(first: Contestant, second: Contestant, fit_half: np.ndarray,
            settings: Settings) -> dict:  # fmt: skip
    """The pair's numbers on the tags both judge (JSON-ready); differences are second - first."""
    positions = first.columns.positions_in(second.columns)
    first_columns = np.flatnonzero(positions >= 0)
    second_columns = positions[first_columns]
    support = first.judgement.support[first_columns]
    report_rows = np.flatnonzero(~fit_half)
    sides = ((first, first_columns), (second, second_columns))
    average_precision = [_map(side.judgement, columns) for side, columns in sides]
    micro_f1 = [_micro_f1(side, columns, report_rows, settings) for side, columns in sides]
    return {
        "first": first.name,
        "second": second.name,
        "tags": len(first_columns),
        "tags_with_positives": int(np.sum(support > 0)),
        "map": _difference(first.name, second.name, *average_precision),
        "micro_f1": _difference(first.name, second.name, *micro_f1),
    }


def _map(judgement: Judgement, columns: np.ndarray) -> tuple[float | None, np.ndarray]:
    """mAP over `columns` on all images, and in each bootstrap resample."""
    resampled = judgement.bootstrap_ap[:, columns]
    finite = np.isfinite(resampled)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_resample = np.where(finite, resampled, 0).sum(axis=1) / finite.sum(axis=1)
    return nanmean(judgement.average_precision[columns]), per_resample


def _micro_f1(side: Contestant, columns: np.ndarray, rows: np.ndarray,
              settings: Settings) -> tuple[float | None, np.ndarray]:  # fmt: skip
    """Micro-F1 over `columns` on the report rows, each model deciding as its judgement did
    (mcut over all its tags), and in each bootstrap resample of those rows."""
    if not len(rows) or not len(columns):
        return None, np.full(settings.bootstrap, np.nan)
    thresholds = side.judgement.report_thresholds
    parts = []
    for start in range(0, len(rows), ROW_BLOCK):
        chosen = rows[start : start + ROW_BLOCK]
        predicted = tag_mask(np.asarray(side.scores[chosen], np.float32), settings.rule,
                             thresholds)[:, columns]  # fmt: skip
        actual = np.asarray(side.targets[chosen], dtype=bool)[:, columns]
        parts.append(cell_counts(predicted, actual).sum(axis=1))
    per_image = np.concatenate(parts)
    estimate = float(precision_recall_f(per_image.sum(axis=0))[2])
    return estimate, bootstrap_micro_f1(per_image, settings)


def _difference(first: str, second: str, first_score: tuple, second_score: tuple) -> dict:
    first_estimate, first_resamples = first_score
    second_estimate, second_resamples = second_score
    difference = None
    if first_estimate is not None and second_estimate is not None:
        difference = second_estimate - first_estimate
    ci95 = interval(second_resamples - first_resamples, difference, DIFFERENCE_BOUNDS)
    return {
        "first": first_estimate,
        "second": second_estimate,
        "difference": difference,
        "difference_ci95": ci95,
        "verdict": verdict(first, second, ci95),
    }


def verdict(first: str, second: str, ci95: list[float] | None) -> str:
    """What the interval of second - first says, in words."""
    if ci95 is None:
        return "no interval: too few posts or tags to resample"
    low, high = ci95
    if low > 0:
        return f"{second} is better: the 95% interval excludes 0"
    if high < 0:
        return f"{first} is better: the 95% interval excludes 0"
    return "no difference shown: the 95% interval holds 0"
