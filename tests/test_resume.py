"""The checks of a resumed --train (alti2v.train.resume), without training: the dataset fingerprint,
the refusal that names what changed, and the warning that names the flags a resume ignores."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from alti2v.train.resume import (
    DatasetChanged,
    check_same_dataset,
    dataset_fingerprint,
    warn_ignored_flags,
)

META = {"eval_fraction": 0.2, "image_size": 150, "resize": "area", "vocab_hash": "abc"}
TRAIN = [b"train/1", b"train/2", b"train/3"]
EVAL = [b"eval/4"]


def fingerprint(**changes) -> dict:
    meta = {**META, **changes.pop("meta", {})}
    arguments = {"train_keys": TRAIN, "eval_keys": EVAL, "contents": "c0", "preprocess": "vgg"}
    arguments.update(changes)
    return dataset_fingerprint(meta, **arguments)


def test_the_same_dataset_resumes() -> None:
    recorded = fingerprint()
    assert check_same_dataset(Path("ck"), recorded, fingerprint()) == recorded


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"train_keys": [*TRAIN, b"train/9"]}, "train posts 3 -> 4, train post ids "),
        ({"train_keys": [b"train/1", b"train/2", b"train/8"]}, "train post ids "),
        ({"contents": "c1"}, "post images or tags c0 -> c1"),
        ({"meta": {"eval_fraction": 0.5}}, "--eval-fraction 0.2 -> 0.5"),
        ({"meta": {"image_size": 64}}, "--image-size 150 -> 64"),
        ({"meta": {"resize": "nearest"}}, "--resize area -> nearest"),
        ({"preprocess": "raw"}, "--preprocess vgg -> raw"),
    ],
)
def test_a_changed_dataset_is_refused_naming_the_change(change, named) -> None:
    with pytest.raises(DatasetChanged) as caught:
        check_same_dataset(Path("ck"), fingerprint(), fingerprint(**change))
    message = str(caught.value)
    assert message.startswith(f"ck: the dataset changed since this run started ({named}")
    assert message.endswith("train with --fresh, or rebuild the dataset as it was to resume")


def test_a_checkpoint_without_fingerprint_resumes_with_a_warning(caplog) -> None:
    current = fingerprint()
    assert check_same_dataset(Path("ck"), None, current) == current
    assert "ck records no dataset fingerprint" in caplog.text


@dataclass
class Config:
    epochs: int = 100
    learning_rate: float = 1e-4
    seed: int = 0


def test_only_explicit_flags_with_other_values_are_named(caplog) -> None:
    asked, kept = Config(epochs=5, learning_rate=0.5, seed=0), Config(learning_rate=1e-4, seed=3)
    with caplog.at_level(logging.WARNING):
        warn_ignored_flags(Path("ck"), asked, kept, frozenset({"epochs", "learning_rate"}))
        warn_ignored_flags(Path("ck"), asked, kept, frozenset({"epochs", "data_dir"}))
    (record,) = caplog.records
    assert record.getMessage() == (
        "resuming ck with its own settings; ignored: --learning-rate 0.5 (keeps 0.0001) "
        "(train with --fresh to use them)"
    )
