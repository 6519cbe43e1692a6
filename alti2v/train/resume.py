"""What a resumed --train checks before it continues: the same dataset, and the flags it ignores.

Every checkpoint records a fingerprint of the dataset it trains on. A resumed run skips the
batches of its epoch already trained on, by position in an order drawn from the key list, and
its learning-rate schedule counts steps per epoch. Both are only true on the dataset the run
started with, so a rebuilt dataset (other posts, other split, other pixels) refuses to resume
rather than train on the wrong data. Settings come from the checkpoint, so flags given
explicitly with other values are named in a warning rather than dropped quietly.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from alti2v.errors import PipelineError

log = logging.getLogger(__name__)

# Fingerprint fields, as named in the refusal.
DESCRIPTIONS = {
    "num_train": "train posts",
    "num_eval": "eval posts",
    "train_keys": "train post ids",
    "eval_keys": "eval post ids",
    "contents": "post images or tags",
    "eval_fraction": "--eval-fraction",
    "image_size": "--image-size",
    "resize": "--resize",
    "preprocess": "--preprocess",
    "vocab_hash": "vocabulary",
}


def keys_hash(keys: list[bytes]) -> str:
    return hashlib.sha256(b"\n".join(keys)).hexdigest()[:16]


def dataset_fingerprint(
    meta: dict, train_keys: list[bytes], eval_keys: list[bytes], contents: str, preprocess: str
) -> dict:
    """`meta` is the database's meta record, `contents` the hash of its record digests."""
    return {
        "num_train": len(train_keys),
        "num_eval": len(eval_keys),
        "train_keys": keys_hash(train_keys),
        "eval_keys": keys_hash(eval_keys),
        "contents": contents,
        "eval_fraction": meta.get("eval_fraction"),
        "image_size": meta.get("image_size"),
        "resize": meta.get("resize"),
        "preprocess": preprocess,
        "vocab_hash": meta.get("vocab_hash"),
    }


def describe_changes(recorded: dict, current: dict) -> str:
    """'train posts 22 -> 20, --eval-fraction 0.2 -> 0.3', or '' when nothing changed."""
    return ", ".join(
        f"{DESCRIPTIONS.get(name, name)} {recorded.get(name)} -> {value}"
        for name, value in current.items()
        if recorded.get(name) != value
    )


class DatasetChanged(PipelineError):
    pass


def check_same_dataset(checkpoint: Path, recorded: dict | None, current: dict) -> dict:
    """The fingerprint to keep recording; raises DatasetChanged naming what changed."""
    if recorded is None:  # written before checkpoints recorded their dataset
        log.warning("%s records no dataset fingerprint; resuming unchecked", checkpoint)
        return current
    changes = describe_changes(recorded, current)
    if changes:
        raise DatasetChanged(
            f"{checkpoint}: the dataset changed since this run started ({changes}); train "
            "with --fresh, or rebuild the dataset as it was to resume"
        )
    return recorded


def warn_ignored_flags(checkpoint: Path, asked: object, kept: object, given: frozenset) -> None:
    """Name the flags given on the command line (`given`, as attribute names of the configs)
    whose values in `asked` the checkpoint's config `kept` overrides; --epochs may change."""
    ignored = [
        f"--{name.replace('_', '-')} {getattr(asked, name)} (keeps {getattr(kept, name)})"
        for name in sorted(given)
        if name != "epochs" and getattr(asked, name, None) != getattr(kept, name, None)
    ]
    if ignored:
        log.warning(
            "resuming %s with its own settings; ignored: %s (train with --fresh to use them)",
            checkpoint, ", ".join(ignored),
        )  # fmt: skip
