"""--build on Danbooru-sized JPEGs against the naive loop, and its peak memory at two sizes.

The posts: `--posts` (1,000) synthetic illustrations as 1500x2000 JPEGs of 300-800 KB with
their .txt and .json (bench/images.py), drawn once into bench/results/ and kept for later runs.
`--small` (250) of them are linked into a second data folder. At each size, in a fresh process:

- ours: alti2v.data.build.build_dataset with the default settings (all cores, JPEG draft decoding);
- naive: one process that opens, fully decodes, resizes to 150x150, packs and puts each post
  into LevelDB one at a time, with LevelDB's default options (the issue's baseline).

Peak memory: the building process's RSS high-water mark (getrusage) and, sampled every 20 ms,
its anonymous part (heap); LevelDB reads its table files through mmap, and those pages count in
RSS but are page cache the kernel can take back. Workers: the largest one's high-water mark.
A third build of each size runs under tracemalloc for the peak of the Python heap alone (what a
plan held per post would show in), and the growth of both from the small size to the full one
is printed per post: a build whose memory does not grow with the posts shows about 0.
CPU seconds (user + system, workers included) are reported beside the wall times, and so is how
much two busy processes get done against one right then: on a shared machine the wall-time
ratio depends on the cores this run was given. Raw output: bench/measured/build-limit-<date>.md.

    python -m bench.build_limit
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

from alti2v.data.build import BuildSettings, build_dataset
from alti2v.data.images import RESIZE_FILTERS
from alti2v.data.layout import DataDir
from alti2v.data.posts import iter_posts
from alti2v.data.records import open_db, pack_record, record_key
from alti2v.data.vocabulary import build_vocabulary, load_vocabulary
from bench.common import child_result, markdown_header, write_measured
from bench.images import DANBOORU_CACHE, MAX_JPEG_BYTES, MIN_JPEG_BYTES, danbooru_posts


def naive_build(data: DataDir) -> None:
    """The baseline: every post decoded in full and written on its own, in one process."""
    index = {tag: position for position, tag in enumerate(load_vocabulary(data.vocab))}
    db = open_db(data.db, create=True)  # LevelDB's default options
    try:
        for post in iter_posts(data.imgs):
            labels = [index[tag] for tag in post.tags() if tag in index]
            with Image.open(post.image) as image:
                resized = image.convert("RGB").resize((150, 150), RESIZE_FILTERS["area"])
            db.put(record_key("train", post.post_id), pack_record(np.asarray(resized), labels))
    finally:
        db.close()


def anonymous_rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_child(way: str, data_root: Path) -> None:
    """Build `data_root` one way in this process; print seconds and peak memory as JSON."""
    data = DataDir(data_root)
    peak_anonymous = [anonymous_rss_mib()]

    def sample() -> None:
        while True:
            peak_anonymous[0] = max(peak_anonymous[0], anonymous_rss_mib())
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    if way == "traced":
        tracemalloc.start()  # slows the build: its timings are not reported
    started = time.perf_counter()
    if way == "naive":
        naive_build(data)
    else:
        build_dataset(data, BuildSettings())
    seconds = time.perf_counter() - started
    traced_peak = tracemalloc.get_traced_memory()[1] if way == "traced" else 0
    own, workers = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    print(json.dumps({
        "seconds": seconds,
        "cpu_seconds": sum(usage.ru_utime + usage.ru_stime for usage in (own, workers)),
        "peak_rss_mib": own.ru_maxrss / 1024,  # ru_maxrss is in KiB on Linux
        "peak_anonymous_rss_mib": max(peak_anonymous[0], anonymous_rss_mib()),
        # Of the largest worker; the pool's workers are reaped when the build ends.
        "worker_peak_rss_mib": workers.ru_maxrss / 1024,
        "traced_peak_mib": traced_peak / 2**20,
    }))  # fmt: skip


def _spin(iterations: int) -> int:
    total = 0
    for value in range(iterations):
        total += value * value
    return total


def parallel_scaling(iterations: int = 20_000_000) -> float:
    """Work two busy processes get done in a given time, against one (2.0 on two free cores)."""
    started = time.perf_counter()
    _spin(iterations)
    one = time.perf_counter() - started
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(abs, [0, 0])  # started
        started = time.perf_counter()
        pool.map(_spin, [iterations, iterations])
        two = time.perf_counter() - started
    return 2 * one / two


def timed_build(way: str, data: DataDir) -> dict:
    shutil.rmtree(data.db, ignore_errors=True)
    result = child_result("bench.build_limit", "--child", way, str(data.root))
    print(json.dumps({"way": way, "data": str(data.root), **result}), file=sys.stderr)
    return result


def data_folder(root: Path, posts: list[Path]) -> DataDir:
    """A data folder whose imgs/ links the given posts' files (no copy)."""
    data = DataDir(root)
    if data.imgs.is_dir():
        shutil.rmtree(data.imgs)
    data.imgs.mkdir(parents=True)
    for image in posts:
        for suffix in (".jpg", ".txt", ".json"):
            os.link(image.with_suffix(suffix), data.imgs / image.with_suffix(suffix).name)
    build_vocabulary(data)
    return data


def _kib_per_post(small: dict, full: dict, name: str, added: int) -> str:
    return f"{1024 * (full[name] - small[name]) / added:+.2f} KiB per added post"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1000, help="posts of the full size")
    parser.add_argument("--small", type=int, default=250, help="posts of the small size")
    parser.add_argument("--child", nargs=2, metavar=("WAY", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child[0], Path(args.child[1]))
        return 0
    header = markdown_header("--build against the naive loop", "python -m bench.build_limit")
    jpegs = danbooru_posts(DANBOORU_CACHE / "imgs", args.posts)
    kib = [path.stat().st_size / 1024 for path in jpegs]
    with Image.open(jpegs[0]) as first:
        shape = f"{first.width}x{first.height}"
    in_range = sum(MIN_JPEG_BYTES <= size * 1024 <= MAX_JPEG_BYTES for size in kib)
    lines = [
        f"{len(jpegs)} JPEG posts ({shape} portrait, landscape turned), sizes KiB: min "
        f"{min(kib):.0f}, median {statistics.median(kib):.0f}, max {max(kib):.0f}; "
        f"{in_range} within 300-800 KB\n",
        "| posts | --build | naive loop | naive time / --build | CPU ms per post, --build / "
        "naive | peak RSS (anonymous), --build | largest worker | peak RSS (anonymous), naive |",
        "|---|---|---|---|---|---|---|---|",
    ]
    results = []
    for count in (args.small, args.posts):
        data = data_folder(DANBOORU_CACHE / f"data-{count}", jpegs[:count])
        ours, naive = timed_build("ours", data), timed_build("naive", data)
        ours["traced_peak_mib"] = timed_build("traced", data)["traced_peak_mib"]
        results.append({"posts": count, "ours": ours, "naive": naive})
        lines.append(
            f"| {count} | {count / ours['seconds']:.1f} posts/s | "
            f"{count / naive['seconds']:.1f} posts/s | "
            f"**{naive['seconds'] / ours['seconds']:.2f}x** | "
            f"{1000 * ours['cpu_seconds'] / count:.1f} / {1000 * naive['cpu_seconds'] / count:.1f}"
            f" = {naive['cpu_seconds'] / ours['cpu_seconds']:.2f}x | "
            f"{ours['peak_rss_mib']:.0f} ({ours['peak_anonymous_rss_mib']:.0f}) MiB | "
            f"{ours['worker_peak_rss_mib']:.0f} MiB | "
            f"{naive['peak_rss_mib']:.0f} ({naive['peak_anonymous_rss_mib']:.0f}) MiB |"
        )
    small, full = (result["ours"] for result in results)
    added = args.posts - args.small
    lines.append(
        f"\n--build's memory from {args.small} to {args.posts} posts: anonymous RSS "
        f"{small['peak_anonymous_rss_mib']:.1f} -> {full['peak_anonymous_rss_mib']:.1f} MiB "
        f"({_kib_per_post(small, full, 'peak_anonymous_rss_mib', added)}), Python heap peak "
        f"(tracemalloc, a separate build) {small['traced_peak_mib']:.2f} -> "
        f"{full['traced_peak_mib']:.2f} MiB "
        f"({_kib_per_post(small, full, 'traced_peak_mib', added)})."
    )
    scaling = parallel_scaling()
    text = (
        header + "\n".join(lines) + f"\n\n{os.cpu_count()} cores, --build's workers: one per core."
        f" Two busy processes did {scaling:.2f}x the work of one during this run (2.00 on two"
        " free cores).\n\n```json\n"
        + json.dumps({"builds": results, "parallel_scaling": scaling}, indent=1)
        + "\n```\n"
    )
    print(text)
    write_measured(text, "build-limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
