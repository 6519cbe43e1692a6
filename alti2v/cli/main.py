"""alt_i2v.py's command line: the parser assembled from the stage modules, the checks across
modes, and the modes run in their fixed order.

    args, given = parse_args(["--pred", "shot.png", "--json"])
    sys.exit(main(["--train", "--epochs", "3"]))
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from alti2v import defaults
from alti2v.cli import build, evaluate, pred, train, vectors, vocab
from alti2v.cli.common import (
    ErrorMessages,
    FlagModes,
    HelpFormatter,
    configure_logging,
    given_flags,
    positive_int,
    progress_bars,
    report_errors,
)
from alti2v.errors import EXIT_CODES_HELP, EXIT_OK, EXIT_SOME_INPUTS_FAILED

DESCRIPTION = """\
alternative illustration2vec: tag anime illustrations with a VGG16 transfer-learning model.

Modes run in this order when combined: --maeshori (tag vocabulary), --build (LevelDB dataset),
--train, --eval (judge a model, fit its thresholds), --pred FILE..., --vec FILE..., --index,
--similar FILE..., --duplicates. Everything is read from and written to --data-dir.
"""
# The stages in the order their modes run; each declares its modes and flags, checks them and
# runs (alti2v.cli.vocab is the shape).
STAGES = (vocab, build, train, evaluate, pred, vectors)
ERRORS = ErrorMessages(
    prefix="alt_i2v.py: error: ",
    interrupted="alt_i2v.py: interrupted; run the same command again to resume",
    os_hint="; check the path and free space",
)


def build_parser(flags: FlagModes | None = None) -> argparse.ArgumentParser:
    """The parser; `flags` learns which modes each mode-specific flag serves."""
    flags = flags if flags is not None else FlagModes()
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, epilog=EXIT_CODES_HELP, formatter_class=HelpFormatter
    )
    modes = parser.add_argument_group("modes (combine freely; they run in this order)")
    for stage in STAGES:
        stage.add_modes(modes)

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
        type=positive_int,
        default=defaults.BATCH_SIZE,
        help="images per training step (--train) and per forward pass (--pred)",
    )
    for stage in STAGES:
        stage.add_flags(parser, flags)
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, frozenset[str]]:
    """The arguments, and the names of those given on the command line (not defaulted); every
    conflict is refused here, before any work."""
    flags = FlagModes()
    parser = build_parser(flags)
    args = parser.parse_args(argv)
    given = given_flags(build_parser, argv)
    all_modes = [mode for stage in STAGES for mode in stage.MODES]
    if not any(getattr(args, mode) for mode in all_modes):
        parser.error(
            "choose at least one mode: --maeshori, --build, --train, --eval, --pred FILE..., "
            "--vec FILE..., --index, --similar FILE..., --duplicates"
        )
    printing_json = [f"--{mode}" for mode in flags.modes["json"] if getattr(args, mode)]
    if args.json and len(printing_json) > 1:
        parser.error(f"--json with {' and '.join(printing_json)} would mix kinds of JSON lines")
    if args.sheet and args.pred and args.similar:
        parser.error("--sheet with both --pred and --similar: run them one at a time")
    flags.refuse_unused(parser, given, lambda mode: getattr(args, mode))
    for stage in STAGES:
        stage.check(parser, args)
    return args, given


def run(args: argparse.Namespace, given: frozenset[str]) -> int:
    # Imported here so that --help and argument errors never wait for TensorFlow.
    from alti2v.data.layout import DataDir

    data = DataDir(args.data_dir)
    progress = progress_bars(args.quiet)
    if args.mixed_precision:  # for --train and --pred alike, before either builds a model
        from alti2v.model.device import use_mixed_precision

        use_mixed_precision()
    failures = 0  # inputs that could not be used; the run goes on without them
    for stage in STAGES:
        if any(getattr(args, mode) for mode in stage.MODES):
            failures += stage.run(args, given, data, progress)
    return EXIT_SOME_INPUTS_FAILED if failures else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args, given = parse_args(argv)
    configure_logging(args.quiet)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    return report_errors(lambda: run(args, given), ERRORS)
