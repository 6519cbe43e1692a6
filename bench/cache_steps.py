"""One training step from pixels against one from cached features, alternated so that a busy
machine slows both alike: the per-step ratio behind --cache-features' speed-up, next to the
ratio of the model's FLOPs (bench/flops.py). Raw output: bench/measured/cache-steps-<date>.md.

    python -m bench.cache_steps
"""

from __future__ import annotations

import argparse
import sys

import keras
import numpy as np

from alti2v import defaults
from alti2v.model.network import build_model
from alti2v.train.cache import split_head
from bench.common import compile_as_train, markdown_header, spread, timed, write_measured
from bench.flops import forward_flops, model_flops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="alternated pairs of steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tags", type=int, default=4096)
    args = parser.parse_args()
    header = markdown_header(
        "Training step from pixels vs from cached features", "python -m bench.cache_steps"
    )
    keras.utils.set_random_seed(0)
    model = build_model(args.tags, weights=None)
    head, tail = split_head(model, defaults.FREEZE)
    for trainee in (model, tail):
        compile_as_train(trainee, args.rounds + 2)  # as an epoch of the steps this run takes
    rng = np.random.default_rng(0)
    images = rng.uniform(-120, 140, (args.batch_size, 150, 150, 3)).astype(np.float32)
    targets = (rng.uniform(size=(args.batch_size, args.tags)) < 0.01).astype(np.float32)
    features = head.predict_on_batch(images).astype(np.float16).astype(np.float32)
    for _ in range(2):  # trace both outside the timing
        model.train_on_batch(images, targets), tail.train_on_batch(features, targets)
    pixels, cached = [], []
    for _ in range(args.rounds):
        pixels.append(timed(model.train_on_batch, images, targets))
        cached.append(timed(tail.train_on_batch, features, targets))
    ratios = [p / c for p, c in zip(pixels, cached, strict=True)]
    flops = model_flops(model)["train"]
    frozen = sum(forward_flops(layer) for layer in model.layers[: defaults.FREEZE])
    lines = [
        f"batch {args.batch_size}, {args.tags} tags, {args.rounds} alternated pairs of steps\n",
        f"- step from pixels, s: {spread(pixels, '.3f')}",
        f"- step from cached features, s: {spread(cached, '.3f')}",
        f"- ratio per pair (pixels / cached): {spread(ratios, '.3f')}",
        f"- FLOP bound: {flops / 1e9:.2f} / {(flops - frozen) / 1e9:.2f} GFLOP per training image"
        f" = {flops / (flops - frozen):.2f}x",
        f"- raw seconds: pixels {[round(v, 3) for v in pixels]}",
        f"  cached {[round(v, 3) for v in cached]}",
    ]
    text = header + "\n".join(lines) + "\n"
    print(text)
    write_measured(text, "cache-steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
