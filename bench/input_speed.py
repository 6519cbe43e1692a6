"""The host side of --train's input pipeline, per image: the network-input conversion against the
plain numpy formula it replaced, and batches read from LevelDB with 1 and with --readers' default
threads making them, then with 1 and 2 reader processes (--reader-processes) making them (flip
augmentation, batch 128, a GPU's batch), all in one run. For each way, the CPU time the trainer's
own process spent per image: where one process's GIL caps the input (a GPU host), that share is
what limits it.

    python -m bench.input_speed          # 512 synthetic posts in a temporary folder

Writes bench/measured/input-speed-<date>.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.data.images import to_model_input
from alti2v.data.records import open_db, record_keys
from alti2v.train.augment import Augmenter
from alti2v.train.batches import PostBatches, RecordReader
from alti2v.train.readers import ReaderProcesses
from bench.common import markdown_header, synthetic_dataset, timings, write_measured
from bench.gpu import read_rate

BATCH = 128
MEAN_BGR = np.float32([103.939, 116.779, 123.68])


def microseconds_per_image(function, pixels: np.ndarray, repeats: int) -> list[float]:
    return [1e6 * seconds / len(pixels) for seconds in timings(lambda: function(pixels), repeats)]


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this process's threads, not its children
    return usage.ru_utime + usage.ru_stime


def read_with_cpu(batches: PostBatches, threads: int) -> tuple[float, float]:
    """(images/s, microseconds of this process's CPU per image) reading every batch once."""
    before = own_cpu_seconds()
    rate = read_rate(batches, threads)
    images = len(batches.keys)
    return rate, 1e6 * (own_cpu_seconds() - before) / images


def reads_alone(db, keys: list[bytes], threads: int, fill_cache: bool) -> tuple[float, float]:
    """(reads/s, microseconds of CPU per read) of plain LevelDB gets of every key once."""
    shares = [keys[start::threads] for start in range(threads)]
    before, started = own_cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda share: [db.get(key, fill_cache=fill_cache) for key in share], shares))
    seconds = time.perf_counter() - started
    return len(keys) / seconds, 1e6 * (own_cpu_seconds() - before) / len(keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    pixels = np.random.default_rng(0).integers(0, 256, (BATCH, 150, 150, 3), dtype=np.uint8)
    plain = microseconds_per_image(
        lambda batch: batch[..., ::-1].astype(np.float32) - MEAN_BGR, pixels, args.repeats
    )
    ours = microseconds_per_image(lambda batch: to_model_input(batch, "vgg"), pixels, args.repeats)
    threads = min(os.cpu_count() or 1, defaults.MAX_READERS)
    with tempfile.TemporaryDirectory() as folder:
        data = synthetic_dataset(Path(folder), args.posts, eval_fraction=0.0)
        db = RecordReader(open_db(data.db))  # as --train reads
        batches = PostBatches(
            db, record_keys(db.db, "train"), BATCH, 4096, "vgg", None, Augmenter(("flip",), 0)
        )
        read_rate(batches, 1)  # the page cache warm for both
        rates = {f"{count} thread(s)": [read_with_cpu(batches, count) for _ in range(args.repeats)]
                 for count in sorted({1, threads})}  # fmt: skip
        gets = {(count, fill): [reads_alone(db.db, batches.keys, count, fill)
                                for _ in range(args.repeats)]
                for fill in (True, False) for count in (1, 2)}  # fmt: skip
        for count in (1, 2):
            with ReaderProcesses(count, BATCH, 150, 4096, "vgg", ("flip",), 0) as workers:
                batches.processes = workers
                rates[f"{count} reader process(es), {max(count, threads)} threads"] = [
                    read_with_cpu(batches, max(count, threads)) for _ in range(args.repeats)
                ]
        db.close()
    lines = [
        markdown_header("The input pipeline's host side, per image"),
        "| what | median | runs |",
        "|---|---|---|",
        f"| `vgg` input, plain numpy formula | {statistics.median(plain):.0f} us/img | "
        + " ".join(f"{value:.0f}" for value in plain) + " |",
        f"| `vgg` input, `to_model_input` | {statistics.median(ours):.0f} us/img | "
        + " ".join(f"{value:.0f}" for value in ours) + " |",
    ]  # fmt: skip
    lines += [
        "",
        "| batches read, flipped, made input | img/s, median | runs | trainer's CPU per image |",
        "|---|---|---|---|",
    ]
    for way, values in rates.items():
        runs = " ".join(f"{rate:.0f}" for rate, _ in values)
        cpu = statistics.median(cpu for _, cpu in values)
        median = statistics.median(rate for rate, _ in values)
        lines.append(f"| {way} | {median:.0f} | {runs} | {cpu:.0f} us |")
    lines += ["", "| LevelDB reads alone | reads/s, median | CPU per read, median |"]
    lines.append("|---|---|---|")
    for (count, fill), values in gets.items():
        rate = statistics.median(rate for rate, _ in values)
        cpu = statistics.median(cpu for _, cpu in values)
        cache = "into the block cache" if fill else "fill_cache=False (as --train reads)"
        lines.append(f"| {count} thread(s), {cache} | {rate:.0f} | {cpu:.0f} us |")
    lines.append(
        f"\n`to_model_input` is {statistics.median(plain) / statistics.median(ours):.1f}x the "
        "plain formula's speed, with the same float32 values (tests/test_images.py)."
    )
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"raw output: {write_measured(text, 'input-speed')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
