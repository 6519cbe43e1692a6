#!/usr/bin/env python3
"""alternative illustration2vec: tag anime illustrations with a VGG16 transfer-learning model.

Modes run in this order when combined: --maeshori (tag vocabulary), --build (LevelDB dataset),
--train, --pred FILE... . Everything is read from and written to --data-dir.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from alti2v import defaults
from alti2v.images import PREPROCESSORS, RESIZE_FILTERS

log = logging.getLogger("alt_i2v")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    modes = parser.add_argument_group("modes (combine freely; they run in this order)")
    modes.add_argument("--maeshori", action="store_true", help="build the tag vocabulary")
    modes.add_argument("--build", action="store_true", help="pack images and tags into LevelDB")
    modes.add_argument("--train", action="store_true", help="train, or resume training")
    modes.add_argument(
        "--pred",
        nargs="+",
        metavar="FILE",
        help="print the tags of image files (a folder: its images)",
    )

    common = parser.add_argument_group("common")
    common.add_argument(
        "--data-dir",
        type=Path,
        default=Path(defaults.DATA_DIR),
        help="data directory (imgs/ inside; every output goes here)",
    )
    common.add_argument("--quiet", action="store_true", help="no progress bars or info logs")

    vocabulary = parser.add_argument_group("--maeshori")
    vocabulary.add_argument(
        "--vocab-size",
        type=_positive_int,
        default=defaults.VOCAB_SIZE,
        help="keep this many most frequent tags",
    )
    vocabulary.add_argument(
        "--min-count",
        type=_positive_int,
        default=defaults.MIN_COUNT,
        help="drop tags on fewer posts than this",
    )
    vocabulary.add_argument(
        "--filter",
        metavar="TAG",
        default=None,
        help="use only posts that carry TAG, e.g. kantai_collection (default: all posts)",
    )

    build = parser.add_argument_group("--build")
    build.add_argument(
        "--resize",
        choices=sorted(RESIZE_FILTERS),
        default=defaults.RESIZE,
        help="resize filter (the original used nearest)",
    )
    build.add_argument(
        "--image-size",
        type=_positive_int,
        default=defaults.IMAGE_SIZE,
        help="side of the square image the model sees, in pixels",
    )
    build.add_argument(
        "--eval-fraction",
        type=_fraction,
        default=defaults.EVAL_FRACTION,
        help="share of posts held out for evaluation (by hash of the post id)",
    )
    build.add_argument(
        "--workers",
        type=int,
        default=defaults.BUILD_WORKERS,
        help="image-decoding processes; 0 means one per CPU core",
    )

    train = parser.add_argument_group("--train (a resumed run keeps its own settings but --epochs)")
    train.add_argument(
        "--epochs", type=_positive_int, default=defaults.EPOCHS, help="epochs in all"
    )
    train.add_argument(
        "--batch-size",
        type=_positive_int,
        default=defaults.BATCH_SIZE,
        help="images per training step",
    )
    train.add_argument(
        "--learning-rate",
        type=float,
        default=defaults.LEARNING_RATE,
        help="Adam's learning rate after warm-up",
    )
    train.add_argument(
        "--warmup-epochs",
        type=float,
        default=defaults.WARMUP_EPOCHS,
        help="epochs over which the learning rate rises from 0",
    )
    train.add_argument(
        "--schedule",
        choices=("constant", "cosine"),
        default=defaults.SCHEDULE,
        help="learning rate after warm-up",
    )
    train.add_argument(
        "--freeze",
        type=int,
        default=defaults.FREEZE,
        help="leading layers kept frozen (12: input through block4_conv1)",
    )
    train.add_argument(
        "--weights",
        default=defaults.WEIGHTS,
        help="VGG16 weights: imagenet (downloads once), none, or a .weights.h5 path",
    )
    train.add_argument(
        "--preprocess",
        choices=sorted(PREPROCESSORS),
        default=defaults.PREPROCESS,
        help="model input: vgg (BGR, ImageNet mean removed) or raw 0-255 pixels",
    )
    train.add_argument("--seed", type=int, default=defaults.SEED, help="shuffling and init seed")
    train.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=defaults.CHECKPOINT_MINUTES,
        help="also checkpoint inside an epoch after this many minutes",
    )
    train.add_argument(
        "--fresh", action="store_true", help="discard existing checkpoints instead of resuming"
    )

    speed = parser.add_argument_group("speed (the architecture is the same either way)")
    speed.add_argument(
        "--cache-features",
        action="store_true",
        help="--train: compute the frozen layers' output once per image (float16, under "
        "DATA_DIR/features) and train the other layers from it",
    )
    speed.add_argument(
        "--mixed-precision",
        action="store_true",
        help="--train, --pred: compute in bfloat16, keep weights and loss in float32 "
        "(for GPUs; a resumed run keeps its checkpoint's precision)",
    )

    pred = parser.add_argument_group("--pred")
    pred.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model folder or its model.keras (default: the newest in DATA_DIR/models)",
    )
    pred.add_argument("--top-k", type=int, default=defaults.TOP_K, help="tags per image; 0 for all")
    pred.add_argument(
        "--threshold",
        type=float,
        default=defaults.THRESHOLD,
        help="print only tags with at least this probability",
    )
    pred.add_argument("--json", action="store_true", help="one JSON object per image per line")
    pred.add_argument(
        "--pred-batch-size",
        type=_positive_int,
        default=defaults.PRED_BATCH_SIZE,
        help="images per forward pass",
    )

    args = parser.parse_args(argv)
    if not (args.maeshori or args.build or args.train or args.pred):
        parser.error("choose at least one mode: --maeshori, --build, --train, --pred FILE...")
    if args.top_k < 0:
        parser.error("--top-k must be 0 (all) or more")
    return args


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every real default; switches and flags whose help states the default are left be."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    # Imported here so that --help and argument errors never wait for TensorFlow.
    from alti2v.layout import DataDir

    data = DataDir(args.data_dir)
    if args.train or args.pred:
        from alti2v.device import describe_device, use_mixed_precision

        if args.mixed_precision:
            use_mixed_precision()
        log.info("%s", describe_device())
    if args.maeshori:
        from alti2v.vocabulary import build_vocabulary

        meta = build_vocabulary(data, args.vocab_size, args.min_count, args.filter, args.quiet)
        print(
            f"maeshori: {meta['num_tags']} tags from {meta['num_posts_used']} posts "
            f"({meta['num_distinct_tags']} distinct) -> {data.vocab}"
        )
    if args.build:
        from alti2v.store import BuildSettings, build_dataset

        settings = BuildSettings(
            args.image_size, args.resize, args.eval_fraction, workers=args.workers
        )
        summary = build_dataset(data, settings, args.quiet)
        skipped = ", ".join(f"{count} {why}" for why, count in sorted(summary["skipped"].items()))
        print(
            f"build: packed {summary['packed']}, already packed {summary['already_packed']}, "
            f"skipped {sum(summary['skipped'].values())}{f' ({skipped})' if skipped else ''}; "
            f"train {summary['num_train']}, eval {summary['num_eval']} -> {data.db}"
        )
    if args.train:
        from alti2v.train import TrainConfig, train

        config = TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            warmup_epochs=args.warmup_epochs, schedule=args.schedule, freeze=args.freeze,
            weights=args.weights, preprocess=args.preprocess, seed=args.seed,
            checkpoint_minutes=args.checkpoint_minutes, cache_features=args.cache_features,
            mixed_precision=args.mixed_precision,
        )  # fmt: skip
        folder = train(data, config, fresh=args.fresh, quiet=args.quiet)
        print(f"train: model saved to {folder}")
    if args.pred:
        from tqdm import tqdm

        from alti2v.models import find_model, load_model
        from alti2v.predict import expand_inputs, predict_files, print_predictions

        loaded = load_model(find_model(args.model, data.models))
        if args.mixed_precision:
            from dataclasses import replace

            from alti2v.device import mixed_precision_copy

            loaded = replace(loaded, model=mixed_precision_copy(loaded.model))
        paths = expand_inputs(args.pred)
        predictions = predict_files(loaded, paths, args.top_k, args.threshold, args.pred_batch_size)
        # A bar between result lines on one terminal only garbles them; show it when stdout
        # goes elsewhere (a file, a pipe), where it is the only sign of progress.
        quiet = args.quiet or sys.stdout.isatty()
        progress = tqdm(predictions, total=len(paths), unit=" img", disable=quiet)
        if print_predictions(progress, args.json):
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    from tqdm.contrib.logging import logging_redirect_tqdm

    from alti2v.errors import PipelineError

    try:
        # Warnings printed while a progress bar is drawn go above it, not into it.
        with logging_redirect_tqdm():
            return run(args)
    except PipelineError as error:
        print(f"alt_i2v.py: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an unwritable data directory, a full disk
        print(f"alt_i2v.py: error: {error}; check the path and free space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("alt_i2v.py: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
