"""Quality benchmark: held-out mAP and micro-F1 of the full pipeline on synthetic illustrations.

Generates --train-count synthetic posts for training and --heldout-count others, runs maeshori,
build, train and pred exactly as the CLI does, and scores the held-out predictions (plain and
with flip test-time augmentation) against two baselines on the same posts: the frequency prior
(every image scored by each tag's training frequency) and the seed's "approach 3" (a logistic
regression per tag on frozen, average-pooled VGG16 features; cached per data seed, since it does
not depend on the training settings). One JSON line on stdout.

    python -m bench.quality                            # the defaults, 600 + 200 images, 5 epochs
    python -m bench.quality --augment none --dropout 0.3
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

import synthetic
from alti2v import defaults
from alti2v.data.build import BuildSettings, build_dataset
from alti2v.data.images import load_image, to_model_input
from alti2v.data.layout import DataDir
from alti2v.data.posts import iter_posts
from alti2v.data.vocabulary import build_vocabulary
from alti2v.model.metrics import mean_average_precision, micro_f1
from bench.machine import describe_machine
from bench.weights import DEFAULT_WEIGHTS

HELDOUT_SEED_OFFSET = 1  # the held-out posts come from another seed, so they are new scenes
TRAIN_COUNT = 600  # synthetic posts to train on
HELDOUT_COUNT = 200  # synthetic posts to score


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("bench/results/quality"),
        help="scratch folder (removed and rebuilt, except the image cache)",
    )
    parser.add_argument("--train-count", type=int, default=TRAIN_COUNT, help="training posts")
    parser.add_argument("--heldout-count", type=int, default=HELDOUT_COUNT, help="held-out posts")
    parser.add_argument("--seed", type=int, default=7, help="synthetic data seed")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs")
    parser.add_argument(
        "--weights",
        default=DEFAULT_WEIGHTS,
        help="VGG16 weights",
    )
    parser.add_argument("--resize", default=defaults.RESIZE, help="resize filter at build")
    parser.add_argument("--learning-rate", type=float, default=defaults.LEARNING_RATE)
    parser.add_argument("--warmup-epochs", type=float, default=defaults.WARMUP_EPOCHS)
    parser.add_argument("--schedule", default=defaults.SCHEDULE)
    parser.add_argument("--preprocess", default=defaults.PREPROCESS)
    parser.add_argument("--batch-size", type=int, default=defaults.BATCH_SIZE)
    parser.add_argument("--augment", default=defaults.AUGMENT)
    parser.add_argument("--dropout", type=float, default=defaults.DROPOUT)
    parser.add_argument("--weight-decay", type=float, default=defaults.WEIGHT_DECAY)
    parser.add_argument("--backbone-lr-scale", type=float, default=defaults.BACKBONE_LR_SCALE)
    parser.add_argument("--head-epochs", type=float, default=defaults.HEAD_EPOCHS)
    parser.add_argument("--loss", default=defaults.LOSS)
    parser.add_argument("--label-smoothing", type=float, default=defaults.LABEL_SMOOTHING)
    parser.add_argument("--bias-init", default=defaults.BIAS_INIT)
    parser.add_argument("--head-init", default=defaults.HEAD_INIT)
    parser.add_argument("--patience", type=int, default=defaults.PATIENCE)
    parser.add_argument("--cache-features", action="store_true", help="--train's")
    parser.add_argument(
        "--train-seed", type=int, default=None, help="--train's --seed (default: --seed)"
    )
    parser.add_argument(
        "--eval-fraction",
        type=float,
        default=0.0,
        help="share of the training posts held out as --train's eval split (for --patience)",
    )
    parser.add_argument("--label", default="", help="name of this run in the JSON line")
    return parser.parse_args()


def image_cache(parent: Path, seed: int, train_count: int, heldout_count: int) -> Path:
    """The folder of a data seed's training and held-out posts, drawn on first use."""
    cache = parent / f"quality-images-seed{seed}"
    if (train_count, heldout_count) != (TRAIN_COUNT, HELDOUT_COUNT):
        # Another size is another set of posts, with its own approach-3 scores.
        cache = cache.with_name(f"{cache.name}-{train_count}+{heldout_count}")
    synthetic.generate(cache / "train", train_count, seed=seed)
    synthetic.generate(cache / "heldout", heldout_count, seed=seed + HELDOUT_SEED_OFFSET)
    return cache


def labelled_posts(folder: Path, tags: list[str]) -> tuple[list[str], np.ndarray]:
    index = {tag: position for position, tag in enumerate(tags)}
    paths, targets = [], []
    for post in iter_posts(folder):
        row = np.zeros(len(tags), dtype=np.float32)
        row[[index[label] for label in post.labels() if label in index]] = 1
        paths.append(str(post.image))
        targets.append(row)
    return paths, np.stack(targets)


def approach3_scores(cache: Path, tags: list[str], weights: str) -> np.ndarray:
    """(held-out posts, tags) scores of approach 3 fitted on every training post; computed once
    per data seed and kept beside its images."""
    from alti2v.evaluate.baselines import feature_extractor
    from alti2v.model.linear import fit_regressions

    scores_path = cache / f"approach3-{len(tags)}tags.npy"
    if scores_path.exists():
        return np.load(scores_path)
    extractor = feature_extractor(defaults.IMAGE_SIZE, weights)

    def features(paths: list[str]) -> np.ndarray:
        pixels = np.stack([load_image(Path(path), defaults.IMAGE_SIZE) for path in paths])
        return extractor.predict(to_model_input(pixels, defaults.PREPROCESS), verbose=0)

    train_paths, train_targets = labelled_posts(cache / "train", tags)
    heldout_paths, _ = labelled_posts(cache / "heldout", tags)
    regressions = fit_regressions(features(train_paths), train_targets.astype(bool))
    scores = regressions.predict(features(heldout_paths))
    temporary = scores_path.with_suffix(".tmp.npy")
    np.save(temporary, scores)
    temporary.replace(scores_path)
    return scores


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from alti2v.model.saved import find_model, load_model
    from alti2v.tag.inputs import InputImage
    from alti2v.tag.predict import predict_images
    from alti2v.train.config import TrainConfig
    from alti2v.train.loop import train

    cache = image_cache(args.work.parent, args.seed, args.train_count, args.heldout_count)
    shutil.rmtree(args.work, ignore_errors=True)
    data = DataDir(args.work)
    args.work.mkdir(parents=True)
    data.imgs.symlink_to((cache / "train").resolve())

    started = time.perf_counter()
    vocabulary = build_vocabulary(data, quiet=True)
    settings = BuildSettings(resize=args.resize, eval_fraction=args.eval_fraction)
    build_dataset(data, settings, quiet=True)
    config_names = {field.name for field in fields(TrainConfig)}
    config = TrainConfig(
        **{k: v for k, v in vars(args).items() if k in config_names - {"seed"}},
        seed=args.seed if args.train_seed is None else args.train_seed,
    )
    train(data, config, quiet=True)
    train_seconds = time.perf_counter() - started

    loaded = load_model(find_model(None, data.models))
    paths, targets = labelled_posts(cache / "heldout", loaded.tags)
    images = [InputImage(Path(path), Path(path).parent) for path in paths]
    scores, flipped = (
        np.stack([prediction.probabilities for prediction in predict_images(tried, images)])
        for tried in (replace(loaded, tta="none"), replace(loaded, tta="flip"))
    )
    approach3 = mean_average_precision(approach3_scores(cache, loaded.tags, args.weights), targets)
    epochs_trained = len((data.training / "history.csv").read_text().splitlines()) - 1
    frequency = (
        np.array([vocabulary["counts"][tag] for tag in loaded.tags]) / vocabulary["num_posts_used"]
    )
    prior = np.broadcast_to(frequency, targets.shape)
    result = {
        "label": args.label,
        "heldout_map": round(mean_average_precision(scores, targets), 4),
        "heldout_micro_f1": round(micro_f1(scores, targets), 4),
        "heldout_map_flip_tta": round(mean_average_precision(flipped, targets), 4),
        "heldout_micro_f1_flip_tta": round(micro_f1(flipped, targets), 4),
        "approach3_map": round(approach3, 4),
        "prior_map": round(mean_average_precision(prior, targets), 4),
        "prior_micro_f1": round(micro_f1(prior, targets), 4),
        "num_tags": len(loaded.tags),
        "train_images": args.train_count,
        "heldout_images": len(paths),
        "pipeline_seconds": round(train_seconds, 1),
        "epochs_trained": epochs_trained,
        "config": {k: v for k, v in vars(args).items() if k not in ("work", "label")},
        "machine": describe_machine(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
