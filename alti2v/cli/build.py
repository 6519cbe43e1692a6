"""--build on the command line: its flags, their checks, and the dataset's summary line."""

from __future__ import annotations

import argparse

from alti2v import defaults
from alti2v.cli.common import FlagModes, counts, fraction, non_negative_int, positive_int
from alti2v.data.images import RESIZE_FILTERS
from alti2v.progress import Progress

MODES = ("build",)
# Five 2x2 poolings halve the image five times: 32 pixels is the least that leaves 1x1.
MIN_IMAGE_SIZE = 32


def add_modes(modes: argparse._ArgumentGroup) -> None:
    modes.add_argument("--build", action="store_true", help="pack images and tags into LevelDB")


def add_flags(parser: argparse.ArgumentParser, flags: FlagModes) -> None:
    build = flags.group(parser, "--build", MODES)
    build.add_argument(
        "--resize",
        choices=sorted(RESIZE_FILTERS),
        default=defaults.RESIZE,
        help="resize filter (the original used nearest)",
    )
    build.add_argument(
        "--image-size",
        type=positive_int,
        default=defaults.IMAGE_SIZE,
        help="side of the square image the model sees, in pixels",
    )
    build.add_argument(
        "--eval-fraction",
        type=fraction,
        default=defaults.EVAL_FRACTION,
        help="share of posts held out for evaluation (by hash of the post id)",
    )
    build.add_argument(
        "--build-workers",
        type=non_negative_int,
        default=defaults.BUILD_WORKERS,
        aliases=("--workers",),
        help="image-decoding processes; 0 means one per CPU core",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.image_size < MIN_IMAGE_SIZE:
        parser.error(
            f"--image-size must be at least {MIN_IMAGE_SIZE} (VGG16 halves it five times), "
            f"got {args.image_size}"
        )


def run(args: argparse.Namespace, given: frozenset[str], data, progress: Progress) -> int:
    """Build the dataset and print its summary; return the posts that failed."""
    from alti2v.data.build import BuildSettings, build_dataset

    settings = BuildSettings(
        args.image_size, args.resize, args.eval_fraction, workers=args.build_workers
    )
    summary = build_dataset(data, settings, progress)
    skipped = counts(summary["skipped"])
    bad_json = summary["bad_json"]
    print(
        f"build: packed {summary['packed']}, repacked {summary['repacked']}, "
        f"moved {summary['moved']}, removed {summary['removed']}, "
        f"unchanged {summary['unchanged']}, "
        f"skipped {sum(summary['skipped'].values())}{f' ({skipped})' if skipped else ''}"
        f"{f', {bad_json} without rating (bad .json)' if bad_json else ''}; "
        f"train {summary['num_train']}, eval {summary['num_eval']} -> {data.db}"
    )
    return summary["failed"]
