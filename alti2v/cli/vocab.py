"""--maeshori on the command line: its flags, and the tag vocabulary's summary line."""

from __future__ import annotations

import argparse

from alti2v import defaults
from alti2v.cli.common import FlagModes, counts, positive_int
from alti2v.progress import Progress

MODES = ("maeshori",)


def add_modes(modes: argparse._ArgumentGroup) -> None:
    modes.add_argument(
        "--maeshori", "--vocab", action="store_true", help="build the tag vocabulary"
    )


def add_flags(parser: argparse.ArgumentParser, flags: FlagModes) -> None:
    vocabulary = flags.group(parser, "--maeshori", MODES)
    vocabulary.add_argument(
        "--vocab-size",
        type=positive_int,
        default=defaults.VOCAB_SIZE,
        metavar="N",
        brief=True,
        help="keep this many most frequent tags",
    )
    vocabulary.add_argument(
        "--min-count",
        type=positive_int,
        default=defaults.MIN_COUNT,
        help="drop tags on fewer posts than this",
    )
    vocabulary.add_argument(
        "--filter",
        metavar="TAG",
        default=None,
        help="use only posts that carry TAG, e.g. kantai_collection (default: all posts)",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Nothing beyond the flags' types."""


def run(args: argparse.Namespace, given: frozenset[str], data, progress: Progress) -> int:
    """Build the vocabulary and print its summary; return the posts that could not be read."""
    from alti2v.data.vocabulary import build_vocabulary

    meta = build_vocabulary(data, args.vocab_size, args.min_count, args.filter, progress)
    problems = counts(meta["problems"])
    print(
        f"maeshori: {meta['num_tags']} tags from {meta['num_posts_used']} posts "
        f"({meta['num_distinct_tags']} distinct)"
        f"{f'; unreadable: {problems}' if problems else ''} -> {data.vocab}"
    )
    return sum(meta["problems"].values())
