"""Fill <data-dir>/imgs/ with tagged images for alt-i2v: from Danbooru's API, its HTML pages, or
a local folder. Only parses flags; the work is in alti2v.scrape.

    python danbooru_datasetgenerator.py --tags "kantai_collection" --limit 500
    python danbooru_datasetgenerator.py --mode html --start-id 6148688 --limit 10
    python danbooru_datasetgenerator.py --mode import --src ~/my_training_set

Credentials come from DANBOORU_LOGIN and DANBOORU_API_KEY (HTTP Basic); the key is never shown.
The summary goes to stdout, progress and logs to stderr. The exit status (the same as
alt_i2v.py's) is in --help; after Ctrl-C (130) the data dir stays consistent and the next run
resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import fields
from pathlib import Path

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
    ScrapeError,
    ScrapeOptions,
)

DEFAULTS = ScrapeOptions()
# Skip reasons that are inputs failing (each was warned about); the others are the site's or the
# user's choices (deleted, duplicate, not an image...).
FAILED_INPUTS = ("corrupt", "download_failed", "unreadable", "unreadable_page")
# Flags that only the network modes use; import refuses them rather than ignore them.
NETWORK_ONLY = (
    "tags",
    "base_url",
    "variant",
    "include_deleted",
    "allow_hosts",
    "rating_scheme",
    "rate",
    "timeout",
    "retries",
    "backoff",
    "max_wait",
    "failed_attempts",
)


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Download tagged images into <data-dir>/imgs/ as <id>.<ext>, .txt and .json.",
        epilog="Set DANBOORU_LOGIN and DANBOORU_API_KEY to search more than 2 tags. "
        + EXIT_CODES_HELP,
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=DEFAULTS.mode,
        help="scrape: the JSON API; html: post pages, like the original project; "
        "import: a local folder (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULTS.data_dir,
        help="data directory; posts go to <data-dir>/imgs/ (default: %(default)s)",
    )
    parser.add_argument(
        "--tags",
        default=DEFAULTS.tags,
        help='search query; "" searches all posts (default: %(default)s)',
    )
    parser.add_argument(
        "--limit",
        type=non_negative_int,
        default=DEFAULTS.limit,
        help=f"new posts to add at most; posts already on disk do not count; 0: no "
        f"limit (default: {DEFAULT_NETWORK_LIMIT} for scrape/html, all for import)",
    )
    parser.add_argument(
        "--base-url",
        default=DEFAULTS.base_url,
        help="the Danbooru-compatible site; https://safebooru.donmai.us is the "
        "safe-only mirror (default: %(default)s)",
    )
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        default=DEFAULTS.variant,
        help="which file: sample (large_file_url, a JPEG about 850 px wide), "
        "original (file_url), or a media_asset size, falling back to the next "
        "larger one (default: %(default)s)",
    )
    parser.add_argument(
        "--include-deleted",
        action="store_true",
        help="also download deleted posts (default: skip them)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        dest="allow_hosts",
        default=[],
        metavar="HOST",
        help="also download files from HOST (may be *.example.com; "
        "repeatable) (default: only the base URL's host and *.donmai.us)",
    )
    parser.add_argument(
        "--rating-scheme",
        choices=RATING_SCHEMES,
        default=DEFAULTS.rating_scheme,
        help="what the site's rating letters mean: current (g/s/q/e), legacy "
        "(before 2022-05: s meant safe, stored as g), or auto: legacy when an "
        "answer has no g and no post was updated since 2022-05 (default: %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=DEFAULTS.rate,
        help="requests per second to the site at most, all requests together "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULTS.timeout,
        help="seconds to wait for a connection or a read (default: %(default)s)",
    )
    parser.add_argument(
        "--retries",
        type=non_negative_int,
        default=DEFAULTS.retries,
        help="retries after a 5xx, 429, connection error or short body (default: %(default)s)",
    )
    parser.add_argument(
        "--backoff",
        type=positive_float,
        default=DEFAULTS.backoff,
        help="seconds before the first retry, doubling each time (default: %(default)s)",
    )
    parser.add_argument(
        "--max-wait",
        type=positive_float,
        default=DEFAULTS.max_wait,
        help="seconds, the longest single backoff or Retry-After wait (default: %(default)s)",
    )
    parser.add_argument(
        "--failed-attempts",
        type=positive_int,
        default=DEFAULTS.failed_attempts,
        metavar="N",
        help="downloads in all, over runs, of a post whose file failed or came back corrupt: "
        "it is kept in <data-dir>/scrape-state.json and retried at the start of later runs, "
        "then given up (and left listed there) (default: %(default)s)",
    )
    parser.add_argument(
        "--start-id",
        type=int,
        default=DEFAULTS.start_id,
        help="html mode: walk post ids downward from this one instead of "
        "reading search pages (default: read search pages for --tags)",
    )
    parser.add_argument(
        "--src",
        type=Path,
        default=DEFAULTS.source_dir,
        help="import mode: folder of images with same-named .txt tag files "
        "(default: none; required for import)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON object (default: one line of text)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar and only warnings on stderr (default: show them)",
    )
    return parser


def options_from(arguments: argparse.Namespace, parser: argparse.ArgumentParser) -> ScrapeOptions:
    """ScrapeOptions from the flags and the environment; conflicting flags end here."""
    if arguments.mode == "import" and arguments.src is None:
        parser.error("--mode import needs --src FOLDER")
    for name in NETWORK_ONLY:
        given_flag = getattr(arguments, name) != parser.get_default(name)
        if arguments.mode == "import" and given_flag:
            parser.error(f"--{name.replace('_', '-')} does not apply to --mode import")
    if arguments.mode != "import" and arguments.src is not None:
        parser.error("--src is only for --mode import")
    if arguments.mode != "html" and arguments.start_id is not None:
        parser.error("--start-id is only for --mode html")
    if arguments.start_id is not None and arguments.start_id < 1:
        parser.error("--start-id must be a post id (1 or more)")
    login = os.environ.get("DANBOORU_LOGIN") or None
    api_key = os.environ.get("DANBOORU_API_KEY") or None
    if bool(login) != bool(api_key):
        parser.error("set both DANBOORU_LOGIN and DANBOORU_API_KEY, or neither")
    given = vars(arguments) | {
        "source_dir": arguments.src,
        "allow_hosts": tuple(arguments.allow_hosts),
        "login": login,
        "api_key": api_key,
    }
    return ScrapeOptions(**{field.name: given[field.name] for field in fields(ScrapeOptions)})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    options = options_from(arguments, parser)
    logging.basicConfig(
        level=logging.WARNING if options.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Imported here so that --help does not wait for requests, Pillow and BeautifulSoup.
    from alti2v.scrape.run import run

    try:
        result = run(options)
    except (ScrapeError, OSError) as error:  # OSError: the data dir is unwritable or full
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: aborted by a second Ctrl-C; run again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    summary = result.tally.summary_line(options.mode)
    if result.interrupted:
        summary += "; stopped by Ctrl-C, run again to continue"
    if arguments.json:
        record = {"mode": options.mode, "interrupted": result.interrupted, "error": result.error}
        summary = json.dumps(record | result.tally.as_dict())
    print(summary)
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    if result.interrupted:
        return EXIT_INTERRUPTED
    failed = sum(result.tally.skipped[reason] for reason in FAILED_INPUTS)
    return EXIT_SOME_INPUTS_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
