"""Decision thresholds: which probability makes a tag "present", by a named rule.

`--eval` fits per-tag thresholds and saves them as `thresholds.json` beside the model; `--pred`
(and every output format) turns probabilities into tags with `tag_mask`, so both agree on what a
rule means. Rules:

- `constant`: one threshold for every tag (`--threshold`); needs no file.
- `mcut`: per image, cut at the largest gap between consecutive sorted probabilities; needs no file.
- `f0.5`, `f1`, `f2`, `category`: per-tag thresholds read from `thresholds.json`
  (F-beta optimum per tag, illustration2vec's names; `category` is one threshold per tag category).

`thresholds.json`:
    {"vocab_hash": "<16 hex>", "rules": {"f1": {"<tag>": 0.42, ...}, ...}, ...}
Other keys (how and on what the thresholds were fitted, a calibration temperature) are free for
the writer; a reader needs only `vocab_hash` and `rules`. A WD-layout folder has them in the
layout's own files (alti2v.model.wd_folder reads them: rule `f1` is selected_tags.csv's
`best_threshold`, rule `category` its thresholds.csv), used until --eval writes a thresholds.json
beside its model.onnx.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alti2v.data.files import read_json
from alti2v.data.layout import ModelFiles
from alti2v.errors import PipelineError

RULES_WITHOUT_FILE = ("constant", "mcut")
FITTED_RULES = ("f0.5", "f1", "f2", "category")
RULES = RULES_WITHOUT_FILE + FITTED_RULES


class ThresholdError(PipelineError):
    pass


def load_rule(model_folder: Path, rule: str, tags: list[str], vocab_hash: str) -> np.ndarray:
    """Per-tag thresholds of a fitted rule, aligned with `tags`, from the model's file."""
    path = ModelFiles(model_folder).thresholds
    if not path.is_file():
        raise ThresholdError(
            f"{model_folder}: no {path.name}; run --eval on this model to fit "
            f"--threshold-rule {rule}, or use --threshold-rule constant or mcut"
        )
    saved = read_json(path, ThresholdError, "run --eval again")
    rules, file_hash = saved.get("rules"), saved.get("vocab_hash")
    if not isinstance(rules, dict) or not all(isinstance(rule, dict) for rule in rules.values()):
        raise ThresholdError(f'{path}: unreadable (no "rules" of thresholds); run --eval again')
    if file_hash != vocab_hash:
        raise ThresholdError(f"{path}: fitted for another vocabulary; run --eval again")
    if rule not in rules:
        raise ThresholdError(f"{path}: has no rule {rule} (has {', '.join(sorted(rules))})")
    fitted = rules[rule]
    missing = [tag for tag in tags if tag not in fitted]
    if missing:
        raise ThresholdError(f"{path}: rule {rule} lacks {len(missing)} tags; run --eval again")
    return np.array([fitted[tag] for tag in tags], dtype=np.float32)


def layout_rule(folder: Path, rule: str, fitted: dict[str, list[float]]) -> np.ndarray:
    """A WD folder's per-tag thresholds of a fitted rule, from `fitted` (its rules by name)."""
    if rule not in fitted:
        held = f"it has {' and '.join(sorted(fitted))} only" if fitted else "it has neither"
        raise ThresholdError(
            f"{folder}: a WD folder holds fitted thresholds as selected_tags.csv's "
            f"best_threshold (--threshold-rule f1) and thresholds.csv (category); {held}: use "
            "one of those, or --threshold-rule constant or mcut"
        )
    return np.array(fitted[rule], dtype=np.float32)


def mcut_mask(probabilities: np.ndarray) -> np.ndarray:
    """(images, tags) -> bool mask: in each row, the tags above the largest gap between
    consecutive probabilities sorted in descending order (MCut, Largeron et al. 2012)."""
    probabilities = np.atleast_2d(probabilities)
    ordered = -np.sort(-probabilities, axis=1)
    if ordered.shape[1] < 2:
        return np.ones_like(probabilities, dtype=bool)
    gaps = ordered[:, :-1] - ordered[:, 1:]
    cut = np.argmax(gaps, axis=1)
    cut_value = (
        ordered[np.arange(len(ordered)), cut] + ordered[np.arange(len(ordered)), cut + 1]
    ) / 2
    return probabilities > cut_value[:, None]


def tag_mask(probabilities: np.ndarray, rule: str, thresholds: np.ndarray | float) -> np.ndarray:
    """(images, tags) -> bool mask of the tags a rule keeps; `thresholds` is a scalar for
    `constant`, ignored for `mcut`, and the array from `load_rule` for the fitted rules."""
    probabilities = np.atleast_2d(probabilities)
    if rule == "mcut":
        return mcut_mask(probabilities)
    return probabilities >= np.asarray(thresholds, dtype=np.float32)
