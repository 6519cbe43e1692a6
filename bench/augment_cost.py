"""What --augment costs: training images/s with augmentation against the same batches without,
alternated and repeated so both see the same machine, plus the augmentation's own CPU time per
batch against a training step.

The model is the real one with a 4096-tag head (random weights: speed does not depend on them),
fed from LevelDB by PostBatches exactly as --train does.

    python -m bench.augment_cost                 # flip,crop,light; 5 alternations of 8 steps
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.train.augment import Augmenter, parse_augment
from bench.common import (
    compile_as_train,
    markdown_header,
    synthetic_dataset,
    timed,
    write_measured,
)

BATCH = 16  # --train's default batch
TAGS = 4096  # the real vocabulary's size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--augment", default="flip,crop,light", help="what to measure")
    parser.add_argument("--steps", type=int, default=8, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="alternations of the two")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from alti2v.data.records import open_db, record_keys, unpack_record
    from alti2v.model.network import build_model
    from alti2v.train.batches import PostBatches

    with tempfile.TemporaryDirectory() as scratch:
        data = synthetic_dataset(Path(scratch), BATCH * args.steps, eval_fraction=0.0)
        db = open_db(data.db)
        keys = record_keys(db, "train")
        augment = Augmenter(parse_augment(args.augment), seed=0)
        plain = PostBatches(db, keys, BATCH, TAGS, defaults.PREPROCESS)
        augmented = PostBatches(db, keys, BATCH, TAGS, defaults.PREPROCESS, augment=augment)

        # The augmentation alone, one thread: its CPU time per batch.
        pixels = [
            np.stack([unpack_record(db.get(key))[0] for key in keys[start : start + BATCH]])
            for start in range(0, len(keys), BATCH)
        ]
        seconds = timed(
            lambda: [
                augment(pixels[index], keys[index * BATCH : (index + 1) * BATCH], 1)
                for index in range(len(pixels))
            ]
        )
        augment_ms = 1000 * seconds / len(pixels)

        model = compile_as_train(build_model(TAGS, weights=None), len(plain))
        model.fit(plain, epochs=1, verbose=0, steps_per_epoch=1)  # trace outside the timing
        fit = functools.partial(model.fit, epochs=1, verbose=0)
        timings: dict[str, list[float]] = {"plain": [], "augmented": []}
        for repeat in range(args.repeats):
            # Alternate which goes first, so a drift in machine load hits both alike.
            order = ("plain", "augmented") if repeat % 2 == 0 else ("augmented", "plain")
            for name in order:
                batches = plain if name == "plain" else augmented
                timings[name].append(timed(fit, batches))
        db.close()

    images_per_run = BATCH * args.steps
    plain_rate = images_per_run / statistics.median(timings["plain"])
    augmented_rate = images_per_run / statistics.median(timings["augmented"])
    ratios = [a / p for a, p in zip(timings["augmented"], timings["plain"], strict=True)]
    each = ", ".join(f"{ratio:.3f}" for ratio in ratios)
    step_ms = 1000 * statistics.median(timings["plain"]) / args.steps
    lines = [
        markdown_header("--augment's cost in training speed"),
        f"Augmentation `{args.augment}`, batch {BATCH}, {TAGS} tags, {args.steps} steps per "
        f"timing, {args.repeats} alternations.",
        "",
        "| measurement | value |",
        "|---|---|",
        f"| training, no augmentation (median) | {plain_rate:.2f} img/s |",
        f"| training, augmented (median) | {augmented_rate:.2f} img/s |",
        f"| augmented time / plain time, each alternation | {each} |",
        f"| median of those ratios | {statistics.median(ratios):.3f} |",
        f"| augmentation alone, one thread | {augment_ms:.1f} ms per batch |",
        f"| one training step | {step_ms:.0f} ms per batch |",
        f"| augmentation CPU time / training step | {augment_ms / step_ms:.1%} |",
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text, end="")
    print(f"raw output: {write_measured(text, 'augment-cost')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
