"""What reconciling costs: a --build with nothing to do (every image hashed to check that its
record is current) against a full --build of the same posts, measured in the same run, as a
ratio, repeated. Posts are synthetic JPEG/PNG "samples" about 850x1100, as Danbooru serves.
One JSON line per repeat and a summary line, with the machine's CPU, flags and load, on stdout.

    python -m bench.rebuild --posts 200 --repeats 3 | tee bench/measured/rebuild-<date>.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from alti2v.data.build import BuildSettings, build_dataset
from alti2v.data.layout import DataDir
from alti2v.data.vocabulary import build_vocabulary
from bench.common import describe_machine, timed
from bench.images import sample_posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=200, help="synthetic posts (default: 200)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per side (default: 3)")
    args = parser.parse_args()
    settings = BuildSettings(workers=1)  # one process: the hashing runs in one process too
    with tempfile.TemporaryDirectory() as folder:
        data = DataDir(Path(folder))
        sample_posts(data.imgs, args.posts)
        build_vocabulary(data)
        ratios = []
        summaries = []

        def build() -> None:
            summaries.append(build_dataset(data, settings))

        for repeat in range(args.repeats):
            shutil.rmtree(data.db, ignore_errors=True)
            full = timed(build)
            assert summaries[-1]["packed"] == args.posts, summaries[-1]
            nothing = timed(build)
            assert summaries[-1]["unchanged"] == args.posts, summaries[-1]
            ratios.append(nothing / full)
            row = {"repeat": repeat, "full_build_s": full, "no_op_build_s": nothing}
            print(json.dumps({**row, "ratio": nothing / full, "loadavg": os.getloadavg()}))
        print(
            json.dumps(
                {
                    "posts": args.posts,
                    "no_op_over_full_median": statistics.median(ratios),
                    "min": min(ratios),
                    "max": max(ratios),
                    "machine": describe_machine(),
                }
            )
        )


if __name__ == "__main__":
    main()
