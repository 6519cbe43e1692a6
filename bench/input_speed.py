"""The host side of --train's input pipeline, per image: the network-input conversion against the
plain numpy formula it replaced, and batches read from LevelDB with 1 and with --readers' default
threads (flip augmentation, batch 128, a GPU's batch), all in one run.

    python -m bench.input_speed          # 512 synthetic posts in a temporary folder

Writes bench/measured/input-speed-<date>.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.data.images import to_model_input
from alti2v.data.records import open_db, record_keys
from alti2v.train.augment import Augmenter
from alti2v.train.batches import PostBatches
from bench.common import markdown_header, synthetic_dataset, timings, write_measured
from bench.gpu import read_rate

BATCH = 128
MEAN_BGR = np.float32([103.939, 116.779, 123.68])


def microseconds_per_image(function, pixels: np.ndarray, repeats: int) -> list[float]:
    return [1e6 * seconds / len(pixels) for seconds in timings(lambda: function(pixels), repeats)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    pixels = np.random.default_rng(0).integers(0, 256, (BATCH, 150, 150, 3), dtype=np.uint8)
    plain = microseconds_per_image(
        lambda batch: batch[..., ::-1].astype(np.float32) - MEAN_BGR, pixels, args.repeats
    )
    ours = microseconds_per_image(lambda batch: to_model_input(batch, "vgg"), pixels, args.repeats)
    threads = min(os.cpu_count() or 1, defaults.MAX_READERS)
    with tempfile.TemporaryDirectory() as folder:
        data = synthetic_dataset(Path(folder), args.posts, eval_fraction=0.0)
        db = open_db(data.db)
        batches = PostBatches(
            db, record_keys(db, "train"), BATCH, 4096, "vgg", None, Augmenter(("flip",), 0)
        )
        read_rate(batches, 1)  # the page cache warm for both
        rates = {count: [read_rate(batches, count) for _ in range(args.repeats)]
                 for count in sorted({1, threads})}  # fmt: skip
        db.close()
    lines = [
        markdown_header("The input pipeline's host side, per image"),
        "| what | median | runs |",
        "|---|---|---|",
        f"| `vgg` input, plain numpy formula | {statistics.median(plain):.0f} us/img | "
        + " ".join(f"{value:.0f}" for value in plain) + " |",
        f"| `vgg` input, `to_model_input` | {statistics.median(ours):.0f} us/img | "
        + " ".join(f"{value:.0f}" for value in ours) + " |",
    ]  # fmt: skip
    for count, values in rates.items():
        runs = " ".join(f"{value:.0f}" for value in values)
        lines.append(
            f"| batches read, flipped, made input: {count} thread(s) | "
            f"{statistics.median(values):.0f} img/s | {runs} |"
        )
    lines.append(
        f"\n`to_model_input` is {statistics.median(plain) / statistics.median(ours):.1f}x the "
        "plain formula's speed, with the same float32 values (tests/test_images.py)."
    )
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"raw output: {write_measured(text, 'input-speed')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
