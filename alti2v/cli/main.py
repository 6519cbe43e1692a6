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
from alti2v.cli import build, evaluate, export, pred, train, vectors, vocab
from alti2v.cli.common import (
    ErrorMessages,
    FlagModes,
    HelpFormatter,
    PrintHelp,
    configure_logging,
    given_flags,
    progress_bars,
    report_errors,
)
from alti2v.errors import EXIT_CODES_HELP, EXIT_OK, EXIT_SOME_INPUTS_FAILED

DESCRIPTION = """\
alternative illustration2vec: tag anime illustrations with a VGG16 transfer-learning model.
Every mode reads from and writes to --data-dir.
"""
# The stages in the order their modes run; each declares its modes and flags, checks them and
# runs (alti2v.cli.vocab is the shape).
BRIEF_FOOTER = "These are the most used flags; --help-all lists every flag, by mode."
STAGES = (vocab, build, train, evaluate, export, pred, vectors)
ERRORS = ErrorMessages(
    prefix="alt_i2v.py: error: ",
    interrupted="alt_i2v.py: interrupted; run the same command again to resume",
    os_hint="; check the path and free space",
)


def build_parser(flags: FlagModes | None = None) -> argparse.ArgumentParser:
    """The parser; `flags` learns which modes each mode-specific flag serves."""
    flags = flags if flags is not None else FlagModes()
    parser = argparse.ArgumentParser(
        usage="%(prog)s MODE... [FLAG...]",
        description=DESCRIPTION,
        epilog=EXIT_CODES_HELP,
        formatter_class=HelpFormatter,
        add_help=False,
    )
    modes = flags.group(parser, "modes (combine freely; they run in this order)")
    for stage in STAGES:
        stage.add_modes(modes.group)
    flags.brief.update(modes.group._group_actions)  # the short --help shows every mode

    common = flags.group(parser, "every mode")
    common.add_argument(
        "--data-dir",
        type=Path,
        default=Path(defaults.DATA_DIR),
        metavar="DIR",
        brief=True,
        help="data directory (imgs/ inside; every output goes here)",
    )
    common.add_argument(
        "--quiet", action="store_true", brief=True, help="no progress bars or info logs"
    )
    common.add_argument(
        "-h", "--help", action=PrintHelp, brief=True,
        render=lambda parser: flags.brief_help(parser, BRIEF_FOOTER),
        help="this short help, the most used flags only",
    )  # fmt: skip
    common.add_argument(
        "--help-all", action=PrintHelp, render=flags.full_help, brief=True,
        help="every flag with its default, by the mode it serves",
    )  # fmt: skip
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
            "choose at least one mode: --maeshori, --build, --train, --eval, --export DIR, "
            "--pred FILE..., "
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
