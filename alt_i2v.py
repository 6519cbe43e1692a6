#!/usr/bin/env python3
"""alternative illustration2vec: tag anime illustrations with a VGG16 transfer-learning model.

Modes run in this order when combined: --maeshori (tag vocabulary), --build (LevelDB dataset),
--train, --pred FILE..., --vec FILE..., --index, --similar FILE..., --duplicates. Everything is
read from and written to --data-dir.
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
    modes.add_argument(
        "--vec",
        nargs="+",
        metavar="FILE",
        help="write a feature vector per image file (a folder: its images) to --vec-out",
    )
    modes.add_argument(
        "--index", action="store_true", help="index every post of the dataset for --similar"
    )
    modes.add_argument(
        "--similar",
        nargs="+",
        metavar="FILE",
        help="print the indexed posts most similar to each image file (a folder: its images)",
    )
    modes.add_argument(
        "--duplicates", action="store_true", help="print groups of near-duplicate indexed posts"
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

    vectors = parser.add_argument_group(
        "--vec, --index, --similar, --duplicates (--model, --json and --pred-batch-size apply)"
    )
    vectors.add_argument(
        "--layer",
        choices=defaults.VECTOR_LAYERS,
        default=defaults.VECTOR_LAYER,
        help="layer read out as the vector: tag logits, the 2048-wide layer or VGG16 block5 "
        "(both mean-pooled); an index is built and queried with one layer",
    )
    vectors.add_argument(
        "--vec-out",
        type=Path,
        default=None,
        help="--vec's .npy (the file order goes beside it as .txt; default DATA_DIR/vectors.npy)",
    )
    vectors.add_argument(
        "--binary", action="store_true", help="--vec writes packed sign bits, not float32"
    )
    vectors.add_argument(
        "--top",
        type=_positive_int,
        default=defaults.SIMILAR_TOP,
        help="results per --similar query",
    )
    vectors.add_argument(
        "--sheet",
        type=Path,
        default=None,
        metavar="PNG",
        help="also draw --similar's queries and results as a contact sheet (default: none)",
    )
    vectors.add_argument(
        "--duplicate-threshold",
        type=float,
        default=None,
        help="cosine similarity at and above which --duplicates links two posts (default: "
        "measured per layer, "
        + ", ".join(f"{layer} {value}" for layer, value in defaults.DUPLICATE_THRESHOLDS.items())
        + ")",
    )

    args = parser.parse_args(argv)
    modes_given = (args.maeshori, args.build, args.train, args.pred, args.vec, args.index,
                   args.similar, args.duplicates)  # fmt: skip
    if not any(modes_given):
        parser.error(
            "choose at least one mode: --maeshori, --build, --train, --pred FILE..., "
            "--vec FILE..., --index, --similar FILE..., --duplicates"
        )
    if args.top_k < 0:
        parser.error("--top-k must be 0 (all) or more")
    for flag, needs, given in (
        ("--binary", "--vec", args.binary),
        ("--vec-out", "--vec", args.vec_out),
        ("--sheet", "--similar", args.sheet),
    ):
        if given and not getattr(args, needs[2:]):
            parser.error(f"{flag} needs {needs}")
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
            checkpoint_minutes=args.checkpoint_minutes,
        )  # fmt: skip
        folder = train(data, config, fresh=args.fresh, quiet=args.quiet)
        print(f"train: model saved to {folder}")
    if args.pred:
        from tqdm import tqdm

        from alti2v.models import find_model, load_model
        from alti2v.predict import expand_inputs, predict_files, print_predictions

        loaded = load_model(find_model(args.model, data.models))
        paths = expand_inputs(args.pred)
        predictions = predict_files(loaded, paths, args.top_k, args.threshold, args.pred_batch_size)
        # A bar between result lines on one terminal only garbles them; show it when stdout
        # goes elsewhere (a file, a pipe), where it is the only sign of progress.
        quiet = args.quiet or sys.stdout.isatty()
        progress = tqdm(predictions, total=len(paths), unit=" img", disable=quiet)
        if print_predictions(progress, args.json):
            return 1
    failures = 0
    if args.vec or args.index or args.similar or args.duplicates:
        failures = _run_vectors(args, data)
    return 1 if failures else 0


def _run_vectors(args: argparse.Namespace, data) -> int:
    """--vec, --index, --similar and --duplicates, in that order; returns the failed inputs."""
    from tqdm import tqdm

    from alti2v.index import open_index, update_index
    from alti2v.models import find_model, load_model
    from alti2v.predict import expand_inputs

    loaded = load_model(find_model(args.model, data.models))
    failures = 0
    if args.vec:
        from alti2v.vectors import (
            VectorExtractor,
            format_vector_json,
            vectors_of_files,
            write_vectors,
        )

        paths = expand_inputs(args.vec)
        extractor = VectorExtractor(loaded, args.layer)
        found = vectors_of_files(loaded, extractor, paths, args.pred_batch_size)
        written = []
        for result in tqdm(found, total=len(paths), unit=" img", disable=args.quiet):
            if result.error is not None:
                failures += 1
                log.error("%s; no vector", result.error)
            else:
                written.append(result)
            if args.json:
                sys.stdout.write(format_vector_json(result, args.binary))
        if not args.json:
            out = args.vec_out or data.vectors
            names = write_vectors(out, written, extractor.width, args.binary)
            kind = "packed sign bits" if args.binary else "float32"
            print(f"vec: {len(written)} vectors ({args.layer}, {kind}) -> {out}, files -> {names}")
    if args.index:
        summary = update_index(data, loaded, args.layer, args.pred_batch_size, args.quiet)
        print(
            f"index: added {summary['added']}, removed {summary['removed']}, "
            f"{summary['total']} posts{' (rebuilt for this model)' if summary['rebuilt'] else ''}; "
            f"model {summary['model']}, layer {summary['layer']} -> {summary['folder']}"
        )
    if args.similar:
        from alti2v.similar import (
            format_similar_json,
            format_similar_text,
            render_similar_sheet,
            similar_files,
        )

        index = open_index(data, loaded, args.layer)
        paths = expand_inputs(args.similar)
        results = []
        for result in similar_files(loaded, index, data, paths, args.top, args.pred_batch_size):
            if result.error is not None:
                failures += 1
                log.error("%s; not searched", result.error)
            if result.error is None or args.json:
                sys.stdout.write(
                    (format_similar_json if args.json else format_similar_text)(result)
                )
                sys.stdout.flush()
            results.append(result)
        if args.sheet:
            log.info("sheet: %s", render_similar_sheet(results, args.sheet))
    if args.duplicates:
        from alti2v.similar import duplicate_groups, format_duplicates_json, format_duplicates_text

        index = open_index(data, loaded, args.layer)
        threshold = args.duplicate_threshold
        if threshold is None:
            threshold = defaults.DUPLICATE_THRESHOLDS[args.layer]
        groups = duplicate_groups(index, threshold)
        for number, group in enumerate(groups, start=1):
            text = (
                format_duplicates_json(group, data)
                if args.json
                else format_duplicates_text(number, group, data)
            )
            sys.stdout.write(text)
        log.info(
            "duplicates: %d groups, %d posts at similarity >= %s",
            len(groups), sum(map(len, groups)), threshold,
        )  # fmt: skip
    return failures


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
