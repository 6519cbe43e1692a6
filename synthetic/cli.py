"""`python -m synthetic --out DIR --count N`: the command line that draws posts into a folder."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from synthetic.posts import DEFAULT_SEED, DEFAULT_START_ID, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synthetic",
        description="Draw synthetic tagged anime-style posts (<id>.<ext>, <id>.txt, <id>.json).",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="directory the posts go into (created)"
    )
    parser.add_argument("--count", type=int, required=True, help="number of posts")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"scene stream (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--start-id",
        type=int,
        default=DEFAULT_START_ID,
        help=f"first post id (default {DEFAULT_START_ID})",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON (default: a line)"
    )
    arguments = parser.parse_args(argv)
    if arguments.count < 0:
        parser.error("--count must be 0 or more")
    if arguments.start_id < 0:
        parser.error("--start-id must be 0 or more")

    first, last = arguments.start_id, arguments.start_id + arguments.count - 1
    present = sum((arguments.out / f"{post_id}.txt").exists() for post_id in range(first, last + 1))
    started = time.monotonic()
    try:
        generate(arguments.out, arguments.count, arguments.seed, arguments.start_id)
    except OSError as error:
        print(f"error: cannot write posts to {arguments.out}: {error}", file=sys.stderr)
        return 1
    summary = {
        "out": str(arguments.out),
        "posts": arguments.count,
        "written": arguments.count - present,
        "already_there": present,
        "first_id": first,
        "last_id": last,
        "seed": arguments.seed,
        "seconds": round(time.monotonic() - started, 2),
    }
    if arguments.json:
        print(json.dumps(summary))
    else:
        print(
            f"synthetic: {summary['posts']} posts (ids {first}..{last}) in {summary['out']}: "
            f"{summary['written']} written, {summary['already_there']} already there, "
            f"seed {summary['seed']}, {summary['seconds']:.1f} s"
        )
    return 0
