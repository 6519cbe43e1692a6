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
import time
from pathlib import Path

import synthetic
from alti2v.data.build import BuildSettings, build_dataset
from alti2v.data.layout import DataDir
from alti2v.data.vocabulary import build_vocabulary


def machine() -> dict:
    info = Path("/proc/cpuinfo").read_text().splitlines()
    field = dict((part.strip() for part in line.split(":", 1)) for line in info if ":" in line)
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": field.get("model name"),
        "flags": field.get("flags"),
        "cores": os.cpu_count(),
        "loadavg": os.getloadavg(),
    }


def timed(function, *args) -> tuple[float, dict]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=200, help="synthetic posts (default: 200)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per side (default: 3)")
    args = parser.parse_args()
    settings = BuildSettings(workers=1)  # one process: the hashing runs in one process too
    with tempfile.TemporaryDirectory() as folder:
        data = DataDir(Path(folder))
        data.imgs.mkdir()
        for post_id in range(1, args.posts + 1):
            image, tags, _ = synthetic.draw_post(3, post_id)
            extension = ".png" if post_id % 2 else ".jpg"
            image.convert("RGB").resize((850, 1100)).save(data.imgs / f"{post_id}{extension}")
            (data.imgs / f"{post_id}.txt").write_text(" ".join(tags))
        build_vocabulary(data, quiet=True)
        ratios = []
        for repeat in range(args.repeats):
            shutil.rmtree(data.db, ignore_errors=True)
            full, summary = timed(build_dataset, data, settings, True)
            assert summary["packed"] == args.posts, summary
            nothing, summary = timed(build_dataset, data, settings, True)
            assert summary["unchanged"] == args.posts, summary
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
                    **machine(),
                }
            )
        )


if __name__ == "__main__":
    main()
