#!/usr/bin/env python3
"""alternative illustration2vec: tag anime illustrations with a VGG16 transfer-learning model.

Modes run in this order when combined: --maeshori (tag vocabulary), --build (LevelDB dataset),
--train, --eval (judge a model, fit its thresholds), --pred FILE..., --vec FILE..., --index,
--similar FILE..., --duplicates. Everything is read from and written to --data-dir.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from alti2v import defaults
from alti2v.data.images import PREPROCESSORS, RESIZE_FILTERS
from alti2v.errors import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_INPUTS_FAILED,
)
from alti2v.tag.captions import CAPTION_MODES
from alti2v.tag.outputs import FILE_FORMATS, FORMATS
from alti2v.tag.thresholds import RULES
from alti2v.train.augment import parse_augment

log = logging.getLogger("alt_i2v")

# VGG16 without its classifier has 19 layers (input, 13 convolutions, 5 poolings).
VGG16_LAYERS = 19
# Five 2x2 poolings halve the image five times: 32 pixels is the least that leaves 1x1.
MIN_IMAGE_SIZE = 32

# Flags that serve several modes (their argument group names the first); a flag given without
# any mode it serves is refused.
SHARED_FLAGS = {
    "weights": ("train", "eval"),
    "seed": ("train", "eval"),
    "model": ("eval", "pred", "vec", "index", "similar", "duplicates"),
    "recursive": ("pred", "vec", "similar"),
    "threshold": ("eval", "pred"),
    "threshold_rule": ("eval", "pred"),
    "json": ("eval", "pred", "vec", "similar", "duplicates"),
    "sheet": ("pred", "similar"),
    "cache_features": ("train",),
    "mixed_precision": ("train", "pred"),
    "tta": ("eval", "pred"),
}
VECTOR_MODES = ("vec", "index", "similar", "duplicates")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, tuple[str, ...]]]:
    """The parser, and for each mode-specific flag (by destination) the modes it serves."""
    parser = argparse.ArgumentParser(
        description=__doc__, epilog=EXIT_CODES_HELP, formatter_class=_HelpFormatter
    )
    modes = parser.add_argument_group("modes (combine freely; they run in this order)")
    modes.add_argument("--maeshori", action="store_true", help="build the tag vocabulary")
    modes.add_argument("--build", action="store_true", help="pack images and tags into LevelDB")
    modes.add_argument("--train", action="store_true", help="train, or resume training")
    modes.add_argument(
        "--eval",
        action="store_true",
        help="judge a model on held-out posts beside baselines; fit thresholds; write a report",
    )
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
    common.add_argument(
        "--batch-size",
        type=_positive_int,
        default=defaults.BATCH_SIZE,
        help="images per training step (--train) and per forward pass (--pred)",
    )

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
        type=_non_negative_int,
        default=defaults.BUILD_WORKERS,
        help="image-decoding processes; 0 means one per CPU core",
    )

    train = parser.add_argument_group("--train (a resumed run keeps its own settings but --epochs)")
    train.add_argument(
        "--epochs", type=_positive_int, default=defaults.EPOCHS, help="epochs in all"
    )
    train.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=defaults.LEARNING_RATE,
        help="Adam's learning rate after warm-up",
    )
    train.add_argument(
        "--warmup-epochs",
        type=_non_negative_float,
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
        type=_non_negative_int,
        default=defaults.FREEZE,
        help=f"leading layers kept frozen, 0 to {VGG16_LAYERS} (12: input through block4_conv1)",
    )
    train.add_argument(
        "--weights",
        default=defaults.WEIGHTS,
        help="VGG16 weights: imagenet (downloads once), none, or a .weights.h5 path "
        "(also --eval's approach-3 baseline)",
    )
    train.add_argument(
        "--preprocess",
        choices=sorted(PREPROCESSORS),
        default=defaults.PREPROCESS,
        help="model input: vgg (BGR, ImageNet mean removed) or raw 0-255 pixels",
    )
    train.add_argument(
        "--augment",
        type=_augment,
        default=defaults.AUGMENT,
        help="change each training image every epoch: none, or a comma list of flip "
        "(mirror), crop (80-100%% of each side) and light (brightness, contrast +-20%%)",
    )
    train.add_argument(
        "--dropout",
        type=_fraction,
        default=defaults.DROPOUT,
        help="dropout rate before the last Dense (0: none, the original's network)",
    )
    train.add_argument(
        "--weight-decay",
        type=_non_negative_float,
        default=defaults.WEIGHT_DECAY,
        help="AdamW's decoupled weight decay (not on biases or BatchNormalization)",
    )
    train.add_argument(
        "--backbone-lr-scale",
        type=_probability,
        default=defaults.BACKBONE_LR_SCALE,
        help="learning rate of the unfrozen VGG16 blocks as a fraction of the new head's",
    )
    train.add_argument(
        "--head-epochs",
        type=_non_negative_float,
        default=defaults.HEAD_EPOCHS,
        help="epochs at the start in which only the new head learns; the VGG16 blocks wait",
    )
    train.add_argument(
        "--loss",
        choices=defaults.LOSS_CHOICES,
        default=defaults.LOSS,
        help="bce: binary cross-entropy (the original's); asl: asymmetric loss, which "
        "down-weights the many easy negatives",
    )
    train.add_argument(
        "--label-smoothing",
        type=_fraction,
        default=defaults.LABEL_SMOOTHING,
        help="bce's targets move this far towards 0.5",
    )
    train.add_argument(
        "--bias-init",
        choices=defaults.BIAS_INIT_CHOICES,
        default=defaults.BIAS_INIT,
        help="the last layer's starting bias: prior (each tag's log-odds on the posts "
        "--maeshori counted, so training starts from the base rates), or zeros (Keras')",
    )
    train.add_argument(
        "--head-init",
        choices=defaults.HEAD_INIT_CHOICES,
        default=defaults.HEAD_INIT,
        help="the new head's starting weights: zero (the last layer's kernel at zero, as Big "
        "Transfer starts its heads), random (Keras', the original's), or linear-probe (fitted "
        "first as approach 3's logistic regressions on the frozen VGG16 output, on at most "
        f"{defaults.BASELINE_MAX} training posts; the network then starts where they are)",
    )
    train.add_argument(
        "--patience",
        type=_non_negative_int,
        default=defaults.PATIENCE,
        help="stop after this many epochs without a better eval mAP (0: train every epoch); "
        "the best epoch is exported either way",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=defaults.SEED,
        help="shuffling and init seed (and --eval's bootstrap and baseline sample)",
    )
    train.add_argument(
        "--checkpoint-minutes",
        type=_positive_float,
        default=defaults.CHECKPOINT_MINUTES,
        help="also checkpoint inside an epoch after this many minutes",
    )
    train.add_argument(
        "--fresh", action="store_true", help="discard existing checkpoints instead of resuming"
    )
    train.add_argument(
        "--readers",
        type=_non_negative_int,
        default=defaults.READERS,
        help=f"threads reading training batches; 0 means one per CPU core, at most "
        f"{defaults.MAX_READERS} (a GPU needs many, a CPU few)",
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

    distribute = parser.add_argument_group(
        "--train --distribute (data parallel with the JAX backend: KERAS_BACKEND=jax)"
    )
    distribute.add_argument(
        "--distribute",
        action="store_true",
        help="train on every local device; with --num-processes, on several machines",
    )
    distribute.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="address of process 0, the same on every machine "
        "(default: $KERAS_DISTRIBUTION_JOB_ADDRESSES)",
    )
    distribute.add_argument(
        "--num-processes",
        type=_positive_int,
        help="processes (machines) training together "
        f"(default: $KERAS_DISTRIBUTION_NUM_PROCESSES, else {defaults.DISTRIBUTE_PROCESSES})",
    )
    distribute.add_argument(
        "--process-id",
        type=int,
        help="this process's number, 0 on the coordinator "
        "(default: $KERAS_DISTRIBUTION_PROCESS_ID, else 0)",
    )

    evaluation = parser.add_argument_group("--eval (also --model, --weights, --seed, --json)")
    evaluation.add_argument(
        "--eval-dir",
        type=Path,
        metavar="DIR",
        default=None,
        help="score the posts of this folder (images + .txt tags) instead of the eval split",
    )
    evaluation.add_argument(
        "--baseline-max",
        type=_positive_int,
        metavar="N",
        default=defaults.BASELINE_MAX,
        help="training posts the logistic-regression baseline (approach 3) fits on, at most",
    )
    evaluation.add_argument(
        "--bootstrap",
        type=_positive_int,
        metavar="N",
        default=defaults.BOOTSTRAP,
        help="resamples of the images for the 95%% confidence intervals",
    )

    pred_groups = _add_pred_arguments(parser)

    vectors = parser.add_argument_group(
        "--vec, --index, --similar, --duplicates "
        "(--model, --json, --batch-size, --recursive and --sheet apply)"
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
        "--duplicate-threshold",
        type=float,
        default=None,
        help="cosine similarity at and above which --duplicates links two posts (default: "
        "measured per layer, "
        + ", ".join(f"{layer} {value}" for layer, value in defaults.DUPLICATE_THRESHOLDS.items())
        + ")",
    )

    flag_modes = {
        action.dest: modes
        for modes, group in (
            (("maeshori",), vocabulary), (("build",), build), (("train",), train),
            (("eval",), evaluation), *((("pred",), group) for group in pred_groups),
            (VECTOR_MODES, vectors),
        )
        for action in group._group_actions
    }  # fmt: skip
    return parser, {**flag_modes, **SHARED_FLAGS}


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, frozenset[str]]:
    """The arguments, and the names of those given on the command line (not defaulted)."""
    parser, flag_modes = build_parser()
    args = parser.parse_args(argv)
    given = _given_flags(argv)
    modes_given = (args.maeshori, args.build, args.train, args.eval, args.pred, args.vec,
                   args.index, args.similar, args.duplicates)  # fmt: skip
    if not any(modes_given):
        parser.error(
            "choose at least one mode: --maeshori, --build, --train, --eval, --pred FILE..., "
            "--vec FILE..., --index, --similar FILE..., --duplicates"
        )
    printing_json = [flag for flag, mode in (("--eval", args.eval), ("--pred", args.pred),
                     ("--vec", args.vec), ("--similar", args.similar),
                     ("--duplicates", args.duplicates)) if mode]  # fmt: skip
    if args.json and len(printing_json) > 1:
        parser.error(f"--json with {' and '.join(printing_json)} would mix kinds of JSON lines")
    for flag, needs, value in (
        ("--binary", "--vec", args.binary),
        ("--vec-out", "--vec", args.vec_out),
        ("--sheet", "--pred or --similar", args.sheet),
    ):
        if value and not any(getattr(args, mode[2:]) for mode in needs.split(" or ")):
            parser.error(f"{flag} needs {needs}")
    if args.sheet and args.pred and args.similar:
        parser.error("--sheet with both --pred and --similar: run them one at a time")
    if args.distribute and not args.train:
        parser.error("--distribute distributes --train; add --train")
    cluster_flags = (args.coordinator, args.num_processes, args.process_id)
    if not args.distribute and any(flag is not None for flag in cluster_flags):
        parser.error("--coordinator, --num-processes and --process-id need --distribute")
    for name, modes in flag_modes.items():
        if name in given and not any(getattr(args, mode) for mode in modes):
            wanted = " or ".join(f"--{mode}" for mode in modes)
            fix = wanted if len(modes) == 1 else "one of them"
            parser.error(
                f"--{name.replace('_', '-')}: only for {wanted}; add {fix} or leave it out"
            )
    if args.top_k < 0:
        parser.error("--top-k must be 0 (all) or more")
    if args.freeze > VGG16_LAYERS:
        parser.error(f"--freeze must be 0 to {VGG16_LAYERS} (VGG16's layers), got {args.freeze}")
    if args.image_size < MIN_IMAGE_SIZE:
        parser.error(
            f"--image-size must be at least {MIN_IMAGE_SIZE} (VGG16 halves it five times), "
            f"got {args.image_size}"
        )
    if args.loss != "bce" and args.label_smoothing:
        parser.error("--label-smoothing is for --loss bce")
    if args.json:
        args.format = "json"
    if not args.caption_ext.startswith(".") or "/" in args.caption_ext:
        parser.error(
            f"--caption-ext must be a file extension such as .txt, not {args.caption_ext!r}"
        )
    if args.format not in FILE_FORMATS:
        for flag, value in (
            ("--skip-unchanged", args.skip_unchanged),
            ("--output-dir", args.output_dir),
        ):
            if value:
                parser.error(f"{flag} needs --format caption or sidecar")
    try:
        args.tag_settings = _tag_settings(args)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    return args, given


def _given_flags(argv: list[str] | None) -> frozenset[str]:
    # Parsed again with every default suppressed, only what the command line set remains.
    explicit, _ = build_parser()
    for action in explicit._actions:
        action.default = argparse.SUPPRESS
    return frozenset(vars(explicit.parse_args(argv)))


def _add_pred_arguments(parser: argparse.ArgumentParser) -> list[argparse._ArgumentGroup]:
    inputs = parser.add_argument_group("--pred: inputs and model")
    inputs.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model folder or its model.keras (default: the newest in DATA_DIR/models); "
        "--eval judges it too",
    )
    inputs.add_argument(
        "--recursive", action="store_true", help="also tag images in subfolders of a folder"
    )
    inputs.add_argument(
        "--tta",
        choices=("none", "flip"),
        default=defaults.TTA,
        help="test-time augmentation (--pred, --eval): flip scores each image and its mirror "
        "image and averages them, at twice the compute",
    )
    inputs.add_argument(
        "--decode-workers",
        type=_non_negative_int,
        default=defaults.DECODE_WORKERS,
        help="image-decoding threads running beside the model; 0 means one per CPU core",
    )

    thresholds = parser.add_argument_group("--pred: which tags an image gets")
    thresholds.add_argument(
        "--threshold",
        type=_probability,
        default=None,
        help=f"threshold rule constant: --pred keeps tags with at least this probability "
        f"(default {defaults.THRESHOLD}); --eval's constant rule "
        f"(default {defaults.EVAL_THRESHOLD})",
    )
    thresholds.add_argument(
        "--threshold-rule",
        choices=RULES,
        default=defaults.THRESHOLD_RULE,
        help="constant (--threshold), mcut (per image, at the largest gap), or per-tag "
        "thresholds fitted by --eval: f0.5, f1, f2, category (--eval: the rule its per_tag.csv "
        "and gallery show)",
    )
    for category in ("general", "character"):
        thresholds.add_argument(
            f"--{category}-threshold",
            type=_probability,
            default=None,
            help=f"this threshold for {category} tags instead of the rule's (default: the rule)",
        )
    thresholds.add_argument(
        "--top-k",
        "--max-tags",
        type=int,
        default=defaults.TOP_K,
        help="at most this many tags per image, after every filter; 0 for all",
    )

    tags = parser.add_argument_group("--pred: tag lists, for every format")
    tags.add_argument(
        "--spaces",
        action="store_true",
        help="write long hair, not long_hair (kaomoji such as ^_^ keep their underscores)",
    )
    tags.add_argument(
        "--escape-parens", action="store_true", help="write \\( and \\) for prompt syntax"
    )
    tags.add_argument(
        "--exclude", nargs="+", action="extend", default=[], metavar="TAG",
        help="leave these tags out (either spelling)",
    )  # fmt: skip
    tags.add_argument(
        "--exclude-file", type=Path, default=None, metavar="FILE",
        help="leave out the tags in FILE (one per line or comma-separated; # comments)",
    )  # fmt: skip
    tags.add_argument(
        "--include-only", nargs="+", action="extend", default=[], metavar="TAG",
        help="keep only these tags (default: every tag)",
    )  # fmt: skip
    tags.add_argument(
        "--replace", nargs="+", action="extend", default=[], metavar="OLD=NEW",
        help="write NEW instead of OLD",
    )  # fmt: skip
    tags.add_argument(
        "--replace-file", type=Path, default=None, metavar="FILE",
        help="OLD=NEW lines, as --replace",
    )  # fmt: skip
    tags.add_argument(
        "--sort", choices=("prob", "alpha"), default=defaults.SORT,
        help="order tags by probability or alphabetically",
    )  # fmt: skip
    tags.add_argument(
        "--rating", choices=("inline", "first", "last", "none"), default=defaults.RATING,
        help="the rating tag ranked like any tag, only the most likely one first or last, or none",
    )  # fmt: skip
    tags.add_argument(
        "--character-first", action="store_true", help="character tags before the others"
    )
    tags.add_argument(
        "--always-first", nargs="+", action="extend", default=[], metavar="TAG",
        help="put these tags first on every image (a trigger word)",
    )  # fmt: skip

    output = parser.add_argument_group("--pred: output")
    output.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default=defaults.FORMAT,
        help="text lines, json lines, csv rows, caption files, or sidecar .json files",
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="--pred: the same as --format json; --eval: the summary as one JSON object",
    )
    output.add_argument(
        "--with-probs", action="store_true", help="captions write (tag:0.87) instead of tag"
    )
    output.add_argument(
        "--caption-ext", default=defaults.CAPTION_EXT, help="caption file: image stem + this"
    )
    output.add_argument(
        "--caption-separator", default=defaults.CAPTION_SEPARATOR, help="between caption tags"
    )
    output.add_argument(
        "--caption-mode",
        choices=CAPTION_MODES,
        default=defaults.CAPTION_MODE,
        help="an existing caption: skip it, overwrite it, or append/prepend the new tags "
        "(each tag once, in either spelling)",
    )
    output.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="write captions and sidecars here, mirroring the input tree (default: beside "
        "each image)",
    )
    output.add_argument(
        "--skip-unchanged",
        action="store_true",
        help="pass over images whose output this model made with these settings from the same "
        "bytes (a caption run keeps a sidecar as the record)",
    )
    output.add_argument(
        "--sheet",
        type=Path,
        default=None,
        metavar="PNG",
        help=f"--pred: also draw a contact sheet of the first {defaults.SHEET_MAX_IMAGES} images, "
        "their tags and probability bars (true tags marked, from a .txt beside an image); "
        "--similar: the queries and their results",
    )
    return [inputs, thresholds, tags, output]


def _tag_settings(args: argparse.Namespace):
    from alti2v.tag.select import TagSettings, parse_replacement, read_tag_list, tag_key

    exclude = list(args.exclude)
    if args.exclude_file:
        exclude += read_tag_list(args.exclude_file.read_text(encoding="utf-8"))
    replacements = list(args.replace)
    if args.replace_file:
        replacements += read_tag_list(args.replace_file.read_text(encoding="utf-8"))
    return TagSettings(
        spaces=args.spaces,
        escape_parens=args.escape_parens,
        exclude=frozenset(map(tag_key, exclude)),
        include_only=frozenset(map(tag_key, args.include_only)),
        replace=dict(map(parse_replacement, replacements)),
        max_tags=args.top_k,
        sort=args.sort,
        rating=args.rating,
        character_first=args.character_first,
        always_first=tuple(args.always_first),
    )


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every real default; switches and flags whose help states the default are left be."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:  # 0 and 0.0 are real defaults
            return action.help
        return super()._get_help_string(action)


def _number(convert: Callable[[str], float], accepts: Callable[[float], bool], rule: str):
    """An argparse type: `convert` the text, refuse what `accepts` rejects (nan included)."""

    def parse(text: str) -> float:
        value = convert(text)
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    parse.__name__ = convert.__name__  # argparse names it in "invalid int value: 'x'"
    return parse


_positive_int = _number(int, lambda value: value >= 1, "at least 1")
_non_negative_int = _number(int, lambda value: value >= 0, "0 or more")
_positive_float = _number(float, lambda value: value > 0, "above 0")
_non_negative_float = _number(float, lambda value: value >= 0, "0 or more")
_probability = _number(float, lambda value: 0 <= value <= 1, "in [0, 1]")
_fraction = _number(float, lambda value: 0 <= value < 1, "in [0, 1)")


def _augment(text: str) -> str:
    try:
        names = parse_augment(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--augment: ")) from None
    return ",".join(names) or "none"


def run(args: argparse.Namespace, given: frozenset[str]) -> int:
    # Imported here so that --help and argument errors never wait for TensorFlow.
    from alti2v.data.layout import DataDir

    data = DataDir(args.data_dir)
    failures = 0  # inputs that could not be used; the run goes on without them
    if args.mixed_precision:
        from alti2v.model.device import use_mixed_precision

        use_mixed_precision()
    if args.maeshori:
        from alti2v.data.vocabulary import build_vocabulary

        meta = build_vocabulary(data, args.vocab_size, args.min_count, args.filter, args.quiet)
        problems = _counts(meta["problems"])
        print(
            f"maeshori: {meta['num_tags']} tags from {meta['num_posts_used']} posts "
            f"({meta['num_distinct_tags']} distinct)"
            f"{f'; unreadable: {problems}' if problems else ''} -> {data.vocab}"
        )
        failures += sum(meta["problems"].values())
    if args.build:
        from alti2v.data.build import BuildSettings, build_dataset

        settings = BuildSettings(
            args.image_size, args.resize, args.eval_fraction, workers=args.workers
        )
        summary = build_dataset(data, settings, args.quiet)
        skipped = _counts(summary["skipped"])
        bad_json = summary["bad_json"]
        print(
            f"build: packed {summary['packed']}, repacked {summary['repacked']}, "
            f"moved {summary['moved']}, removed {summary['removed']}, "
            f"unchanged {summary['unchanged']}, "
            f"skipped {sum(summary['skipped'].values())}{f' ({skipped})' if skipped else ''}"
            f"{f', {bad_json} without rating (bad .json)' if bad_json else ''}; "
            f"train {summary['num_train']}, eval {summary['num_eval']} -> {data.db}"
        )
        failures += summary["failed"]
    if args.train:
        from alti2v.train.config import TrainConfig
        from alti2v.train.distribute import ONE_DEVICE, start
        from alti2v.train.loop import train

        cluster = ONE_DEVICE
        if args.distribute:  # before anything asks JAX for its devices
            cluster = start(args.coordinator, args.num_processes, args.process_id)
        _log_device()

        config = TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            warmup_epochs=args.warmup_epochs, schedule=args.schedule, freeze=args.freeze,
            weights=args.weights, preprocess=args.preprocess, augment=args.augment,
            dropout=args.dropout, weight_decay=args.weight_decay,
            backbone_lr_scale=args.backbone_lr_scale, head_epochs=args.head_epochs, loss=args.loss,
            label_smoothing=args.label_smoothing, bias_init=args.bias_init,
            head_init=args.head_init,
            patience=args.patience, seed=args.seed,
            checkpoint_minutes=args.checkpoint_minutes, cache_features=args.cache_features,
            mixed_precision=args.mixed_precision,
        )  # fmt: skip
        folder = train(
            data, config, fresh=args.fresh, quiet=args.quiet, given=given, cluster=cluster,
            readers=args.readers,
        )  # fmt: skip
        if cluster.is_first:
            print(f"train: model saved to {folder}")
        else:
            print(f"train: done as process {cluster.process_index}; process 0 saved the model")
    if args.eval:
        failures += _evaluate(data, args)
    if args.pred:
        from alti2v.model.saved import find_model, load_model
        from alti2v.tag.captions import CaptionSettings
        from alti2v.tag.collection import PredOptions, Thresholds, tag_collection
        from alti2v.tag.inputs import find_inputs

        _log_device()
        folder = find_model(args.model, data.models)
        loaded = replace(load_model(folder), tta=args.tta)
        if args.mixed_precision:
            from alti2v.model.device import mixed_precision_copy

            loaded = replace(loaded, model=mixed_precision_copy(loaded.model))
        log.info("pred: model %s (%d tags)", folder, len(loaded.tags))
        options = PredOptions(
            format=args.format, tags=args.tag_settings,
            thresholds=Thresholds(
                args.threshold_rule,
                defaults.THRESHOLD if args.threshold is None else args.threshold,
                args.general_threshold,
                args.character_threshold,
            ),
            captions=CaptionSettings(
                args.caption_ext, args.caption_separator, args.caption_mode, args.output_dir,
                args.skip_unchanged,
            ),
            with_probs=args.with_probs, batch_size=args.batch_size,
            workers=args.decode_workers, sheet=args.sheet,
        )  # fmt: skip
        found = find_inputs(args.pred, args.recursive)
        failures += tag_collection(loaded, folder, found, options, args.quiet)
    if args.vec or args.index or args.similar or args.duplicates:
        failures += _run_vectors(args, data)
    return EXIT_SOME_INPUTS_FAILED if failures else EXIT_OK


def _log_device() -> None:
    from alti2v.model.device import describe_device

    log.info("%s", describe_device())


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {why}" for why, count in sorted(counts.items()))


def _evaluate(data, args: argparse.Namespace) -> int:
    """Run --eval and print its summary; return how many posts could not be read."""
    import json

    from alti2v.evaluate.judge import Settings
    from alti2v.evaluate.run import EvalOptions, evaluate, summary_text, unreadable
    from alti2v.model.saved import find_model, load_model

    folder = find_model(args.model, data.models)
    threshold = defaults.EVAL_THRESHOLD if args.threshold is None else args.threshold
    settings = Settings(args.threshold_rule, threshold, args.bootstrap, args.seed)
    options = EvalOptions(args.eval_dir, args.baseline_max, args.weights, settings, args.batch_size)
    loaded = replace(load_model(folder), tta=args.tta)
    summary = evaluate(data, loaded, folder, options, args.quiet)
    print(json.dumps(summary) if args.json else summary_text(summary, data, folder))
    return unreadable(summary)


def _run_vectors(args: argparse.Namespace, data) -> int:
    """--vec, --index, --similar and --duplicates, in that order; returns the failed inputs."""
    from tqdm import tqdm

    from alti2v.model.saved import find_model, load_model
    from alti2v.vectors.index import open_index, update_index

    loaded = load_model(find_model(args.model, data.models))
    failures = 0
    if args.vec:
        from alti2v.vectors.extract import (
            VectorExtractor,
            format_vector_json,
            vectors_of_files,
            write_vectors,
        )

        paths, failures = _input_paths(args.vec, args.recursive, failures)
        extractor = VectorExtractor(loaded, args.layer)
        found = vectors_of_files(loaded, extractor, paths, args.batch_size)
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
        summary = update_index(data, loaded, args.layer, args.batch_size, args.quiet)
        print(
            f"index: added {summary['added']}, removed {summary['removed']}, "
            f"{summary['total']} posts{' (rebuilt for this model)' if summary['rebuilt'] else ''}; "
            f"model {summary['model']}, layer {summary['layer']} -> {summary['folder']}"
        )
    if args.similar:
        from alti2v.vectors.similar import (
            format_similar_json,
            format_similar_text,
            render_similar_sheet,
            similar_files,
        )

        index = open_index(data, loaded, args.layer)
        paths, failures = _input_paths(args.similar, args.recursive, failures)
        results = []
        for result in similar_files(loaded, index, data, paths, args.top, args.batch_size):
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
        from alti2v.vectors.similar import (
            duplicate_groups,
            format_duplicates_json,
            format_duplicates_text,
        )

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


def _input_paths(given: list[str], recursive: bool, failures: int) -> tuple[list[str], int]:
    """The image files of FILE... arguments (as --pred finds them), each problem reported."""
    from alti2v.tag.inputs import find_inputs

    found = find_inputs(given, recursive)
    for problem in found.problems:
        log.error(problem)
    return [str(image.path) for image in found.images], failures + len(found.problems)


def main(argv: list[str] | None = None) -> int:
    args, given = parse_args(argv)
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
            return run(args, given)
    except PipelineError as error:
        print(f"alt_i2v.py: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:  # an unwritable data directory, a full disk
        print(f"alt_i2v.py: error: {error}; check the path and free space", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("alt_i2v.py: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
