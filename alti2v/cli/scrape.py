"""danbooru_datasetgenerator.py's command line: the flags into `ScrapeOptions`, the run, and its
summary (one line of text, or one JSON object) on stdout.

    sys.exit(main(["--tags", "kantai_collection", "--limit", "500"]))
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import fields
from pathlib import Path

from alti2v.cli.common import (
    ErrorMessages,
    FlagModes,
    HelpFormatter,
    configure_logging,
    given_flags,
    non_negative_int,
    positive_float,
    positive_int,
    print_error,
    progress_bars,
    report_errors,
)
from alti2v.data.skips import failed_inputs
from alti2v.errors import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_INPUTS_FAILED,
)
from alti2v.scrape import (
    DEFAULT_NETWORK_LIMIT,
    MODES,
    RATING_SCHEMES,
    VARIANTS,
    ScrapeOptions,
)

DEFAULTS = ScrapeOptions()
NETWORK_MODES = tuple(mode for mode in MODES if mode != "import")
ERRORS = ErrorMessages(
    prefix="error: ", interrupted="error: aborted by a second Ctrl-C; run again to continue"
)


def build_parser(flags: FlagModes | None = None) -> argparse.ArgumentParser:
    """The parser; `flags` learns which --mode each mode-specific flag serves."""
    flags = flags if flags is not None else FlagModes()
    parser = argparse.ArgumentParser(
        description="Download tagged images into <data-dir>/imgs/ as <id>.<ext>, .txt and .json.",
        epilog=EXIT_CODES_HELP,
        formatter_class=HelpFormatter,
    )
    # What each group's flags serve: every --mode unless a flag names its own; import refuses
    # the network modes' flags rather than ignore them.
    fetch = flags.group(parser, "what to fetch")
    manners = flags.group(parser, "manners towards the site", NETWORK_MODES)
    output = flags.group(parser, "where to write, what to print")
    flags.group(
        parser,
        "credentials",
        description="DANBOORU_LOGIN and DANBOORU_API_KEY, from the environment only (never "
        "printed): with them a search may name more than 2 tags",
    )
    fetch.add_argument(
        "--mode",
        choices=MODES,
        default=DEFAULTS.mode,
        help="scrape: the JSON API; html: post pages, like the original project; "
        "import: a local folder",
    )
    fetch.add_argument(
        "--tags",
        default=DEFAULTS.tags,
        help='search query; "" searches all posts',
        modes=NETWORK_MODES,
    )
    fetch.add_argument(
        "--limit",
        type=non_negative_int,
        default=DEFAULTS.limit,
        help=f"new posts to add at most; posts already on disk do not count; 0: no "
        f"limit (default: {DEFAULT_NETWORK_LIMIT} for scrape/html, all for import)",
    )
    fetch.add_argument(
        "--base-url",
        default=DEFAULTS.base_url,
        help="the Danbooru-compatible site; https://safebooru.donmai.us is the safe-only mirror",
        modes=NETWORK_MODES,
    )
    fetch.add_argument(
        "--variant",
        choices=VARIANTS,
        default=DEFAULTS.variant,
        help="which file: sample (large_file_url, a JPEG about 850 px wide), "
        "original (file_url), or a media_asset size, falling back to the next larger one",
        modes=NETWORK_MODES,
    )
    fetch.add_argument(
        "--include-deleted",
        action="store_true",
        help="also download deleted posts (default: skip them)",
        modes=NETWORK_MODES,
    )
    fetch.add_argument(
        "--rating-scheme",
        choices=RATING_SCHEMES,
        default=DEFAULTS.rating_scheme,
        help="what the site's rating letters mean: current (g/s/q/e), legacy "
        "(before 2022-05: s meant safe, stored as g), or auto: legacy when an "
        "answer has no g and no post was updated since 2022-05",
        modes=NETWORK_MODES,
    )
    fetch.add_argument(
        "--start-id",
        type=int,
        default=DEFAULTS.start_id,
        modes=("html",),
        refusal="--start-id is only for --mode html",
        help="html mode: walk post ids downward from this one instead of "
        "reading search pages (default: read search pages for --tags)",
    )
    fetch.add_argument(
        "--src",
        type=Path,
        default=DEFAULTS.source_dir,
        modes=("import",),
        refusal="--src is only for --mode import",
        help="import mode: folder of images with same-named .txt tag files "
        "(default: none; required for import)",
    )
    fetch.add_argument(
        "--allow-host",
        action="append",
        dest="allow_hosts",
        default=[],
        metavar="HOST",
        help="also download files from HOST (may be *.example.com; "
        "repeatable) (default: only the base URL's host and *.donmai.us)",
        modes=NETWORK_MODES,
    )
    manners.add_argument(
        "--rate",
        type=positive_float,
        default=DEFAULTS.rate,
        help="requests per second to the site at most, all requests together",
    )
    manners.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULTS.timeout,
        help="seconds to wait for a connection or a read",
    )
    manners.add_argument(
        "--retries",
        type=non_negative_int,
        default=DEFAULTS.retries,
        help="retries after a 5xx, 429, connection error or short body",
    )
    manners.add_argument(
        "--backoff",
        type=positive_float,
        default=DEFAULTS.backoff,
        help="seconds before the first retry, doubling each time",
    )
    manners.add_argument(
        "--max-wait",
        type=positive_float,
        default=DEFAULTS.max_wait,
        help="seconds, the longest single backoff or Retry-After wait",
    )
    manners.add_argument(
        "--failed-attempts",
        type=positive_int,
        default=DEFAULTS.failed_attempts,
        metavar="N",
        help="downloads in all, over runs, of a post whose file failed or came back corrupt: "
        "it is kept in <data-dir>/scrape-state.json and retried at the start of later runs, "
        "then given up (and left listed there)",
    )
    output.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULTS.data_dir,
        help="data directory; posts go to <data-dir>/imgs/",
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON object (default: one line of text)",
    )
    output.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar and only warnings on stderr (default: show them)",
    )
    return parser


def options_from(
    arguments: argparse.Namespace,
    parser: argparse.ArgumentParser,
    flags: FlagModes,
    given: frozenset[str],
) -> ScrapeOptions:
    """ScrapeOptions from the flags and the environment; conflicting flags end here."""
    if arguments.mode == "import" and arguments.src is None:
        parser.error("--mode import needs --src FOLDER")
    flags.refuse_unused(
        parser,
        given,
        lambda mode: arguments.mode == mode,
        lambda flag, modes: f"{flag} does not apply to --mode {arguments.mode}",
    )
    if arguments.start_id is not None and arguments.start_id < 1:
        parser.error("--start-id must be a post id (1 or more)")
    login = os.environ.get("DANBOORU_LOGIN") or None
    api_key = os.environ.get("DANBOORU_API_KEY") or None
    if bool(login) != bool(api_key):
        parser.error("set both DANBOORU_LOGIN and DANBOORU_API_KEY, or neither")
    values = vars(arguments) | {
        "source_dir": arguments.src,
        "allow_hosts": tuple(arguments.allow_hosts),
        "login": login,
        "api_key": api_key,
    }
    return ScrapeOptions(**{field.name: values[field.name] for field in fields(ScrapeOptions)})


def summary_line(tally, mode: str, state_file: str) -> str:
    """What the run did, on one line: the downloads, the skips by reason, the retries."""
    skipped = sum(tally.skipped.values())
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(tally.skipped.items()))
    line = (
        f"{mode}: downloaded {tally.downloaded} posts ({tally.bytes} bytes), "
        f"skipped {skipped}" + (f" ({reasons})" if reasons else "")
    )
    if tally.retried:
        line += f"; failed posts retried: {tally.retried}, stored {tally.retried_stored}"
    if tally.given_up:
        line += f"; given up: {tally.given_up} (listed in {state_file})"
    if tally.failed_pending:
        line += f"; failed posts to retry next run: {tally.failed_pending}"
    return line


def run(options: ScrapeOptions, as_json: bool, quiet: bool) -> int:
    # Imported here so that --help does not wait for requests, Pillow and BeautifulSoup.
    from alti2v.data.layout import DataDir
    from alti2v.scrape.run import run

    result = run(options, progress_bars(quiet, dynamic_ncols=True))
    summary = summary_line(result.tally, options.mode, DataDir(options.data_dir).scrape_state.name)
    if result.interrupted:
        summary += "; stopped by Ctrl-C, run again to continue"
    if as_json:
        record = {"mode": options.mode, "interrupted": result.interrupted, "error": result.error}
        summary = json.dumps(record | result.tally.as_dict())
    print(summary)
    if result.error:
        print_error(f"{ERRORS.prefix}{result.error}")
        return EXIT_FAILED
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_SOME_INPUTS_FAILED if failed_inputs(result.tally.skipped) else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    flags = FlagModes()
    parser = build_parser(flags)
    arguments = parser.parse_args(argv)
    options = options_from(arguments, parser, flags, given_flags(build_parser, argv))
    configure_logging(arguments.quiet, "%(levelname)s %(name)s: %(message)s")
    return report_errors(lambda: run(options, arguments.json, arguments.quiet), ERRORS)
