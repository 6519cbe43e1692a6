"""Scale on paper: disk, --build time and epoch time for 1.39 million posts on 1, 8 and 32 GPUs.

Measures on this machine what one CPU core does (decode a Danbooru-sized JPEG to 150x150; read,
unpack and preprocess a shuffled LevelDB record, as `PostBatches` does) and counts the bytes of
a record and of the 4096-tag model's gradient. Everything else is an assumption with a flag, and
the output says which: the GPU's training rate, cores per machine, link bandwidths. An epoch's
time is the slowest of three pipes: GPU compute plus the gradient all-reduce (not overlapped, an
upper bound), and the input (LevelDB readers on each machine: threads times this machine's rate
per core, capped by what one process's threads were measured to deliver on the GPU machine).
Raw output: bench/measured/scale.md.

    python -m bench.scale > bench/measured/scale.md
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from alti2v.data.images import load_image
from alti2v.data.records import open_db, pack_record
from alti2v.train.batches import PostBatches
from bench.common import markdown_header, spread
from bench.images import large_jpegs

TAGS = 4096
LABELS_PER_POST = 30  # about what a Danbooru post keeps out of a 4096-tag vocabulary
GPUS = (1, 8, 32)


def repeated(function, count: int, repeats: int) -> list[float]:
    """Items per CPU-second of `function` (which handles `count` items), once per repeat.

    CPU time, not wall time: on this shared machine a process gets a fraction of a core that
    changes from second to second; the work per item is what a dedicated core would see."""
    rates = []
    for _ in range(repeats):
        started = time.process_time()
        function()
        rates.append(count / (time.process_time() - started))
    return rates


def measure_decode(folder: Path, count: int, repeats: int) -> list[float]:
    paths = large_jpegs(folder, count, (1500, 2000), seed=5)
    return repeated(lambda: [load_image(path) for path in paths], count, repeats)


def measure_records(folder: Path, count: int, repeats: int) -> tuple[int, float, list[float]]:
    """(bytes of one record, bytes on disk per record, shuffled reads per second per core)."""
    rng = np.random.default_rng(0)
    # Noise does not compress: the on-disk figure is an upper bound for real illustrations.
    pixels = rng.integers(0, 256, size=(count, 150, 150, 3), dtype=np.uint8)
    labels = [sorted(rng.choice(TAGS, LABELS_PER_POST, replace=False).tolist()) for _ in pixels]
    records = [pack_record(image, label) for image, label in zip(pixels, labels, strict=True)]
    path = folder / "records.ldb"
    db = open_db(path, create=True)
    keys = [f"train/{index}".encode() for index in range(count)]
    with db.write_batch() as batch:
        for key, record in zip(keys, records, strict=True):
            batch.put(key, record)
    db.compact_range()
    disk = sum(file.stat().st_size for file in path.iterdir())
    order = [keys[index] for index in rng.permutation(count)]
    batches = PostBatches(db, order, 64, TAGS, "vgg")
    rates = repeated(lambda: [batches[index] for index in range(len(batches))], count, repeats)
    db.close()
    return len(records[0]), disk / count, rates


def count_parameters() -> tuple[int, int]:
    """(trainable parameters, parameters of the last Dense layer) of the 4096-tag model."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from alti2v.model.network import build_model

    model = build_model(TAGS, weights=None)
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    last = model.get_layer(index=-3)  # Dense(num_tags), then the linear and sigmoid activations
    return trainable, sum(int(np.prod(weight.shape)) for weight in last.weights)


def all_reduce_seconds(gradient_bytes: int, gpus: int, args: argparse.Namespace) -> float:
    """One ring all-reduce of the gradient: each GPU sends and receives 2(n-1)/n of it over its
    slowest link (NVLink inside a machine, the network between machines)."""
    if gpus == 1:
        return 0.0
    link = args.nvlink_gbps if gpus <= args.gpus_per_machine else args.network_gbps
    return 2 * (gpus - 1) / gpus * gradient_bytes / (link * 1e9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_390_000, help="posts (the original's)")
    parser.add_argument("--images", type=int, default=24, help="JPEGs to time decoding on")
    parser.add_argument("--records", type=int, default=1024, help="LevelDB records to time")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each measurement")
    parser.add_argument(
        "--gpu-images-per-second", type=float, default=17_200.0,
        help="training images/s of one GPU (H100, JAX, bfloat16, batch 128, 4096 tags, from "
        "memory: bench/measured/gpu-20261127-0823-batch128.json)",
    )  # fmt: skip
    parser.add_argument("--batch-per-gpu", type=int, default=128, help="images per GPU per step")
    parser.add_argument("--gpus-per-machine", type=int, default=8)
    parser.add_argument("--cores-per-machine", type=int, default=16, help="for decode and reads")
    parser.add_argument(
        "--reader-threads", type=int, default=16, help="--train-readers (its default on 16 cores)"
    )
    parser.add_argument(
        "--input-images-per-second", type=float, default=8_000.0,
        help="most one process's reader threads deliver, whatever their number (Python's lock): "
        "16 on the H100 machine's 16-core Xeon, batch 128 (bench/measured/gpu-20261127-0823-"
        "batch128.json, read_host_float32_images_per_second)",
    )  # fmt: skip
    parser.add_argument(
        "--nvlink-gbps", type=float, default=200.0,
        help="all-reduce bandwidth per GPU inside a machine, GB/s (NCCL on NVLink, conservative)",
    )  # fmt: skip
    parser.add_argument(
        "--network-gbps", type=float, default=50.0,
        help="all-reduce bandwidth per GPU between machines, GB/s (one 400 Gb/s NIC per GPU)",
    )  # fmt: skip
    args = parser.parse_args()

    header = markdown_header("Scale on paper")  # the machine and its load before measuring
    with tempfile.TemporaryDirectory() as scratch:
        decode = measure_decode(Path(scratch), args.images, args.repeats)
        record_bytes, disk_per_record, reads = measure_records(
            Path(scratch), args.records, args.repeats
        )
    trainable, last_layer = count_parameters()
    gradient_bytes = 4 * trainable  # float32 gradients, whatever the compute precision

    decode_rate, read_rate = statistics.median(decode), statistics.median(reads)
    print(header, end="")
    print(f"Load average after: {os.getloadavg()[0]:.2f} (1 min).\n")
    print("## Measured here (per CPU-second of one core; median, min and max of the repeats)\n")
    decoded, read = spread(decode, ",.0f"), spread(reads, ",.0f")
    print(f"- decode a 1500x2000 JPEG to 150x150 (`load_image`): {decoded} images/s")
    print(f"- shuffled LevelDB read + unpack + vgg preprocess, batches of 64: {read} images/s")
    print(
        f"- one record: {record_bytes:,} bytes packed, {disk_per_record:,.0f} bytes on disk "
        "(noise pixels: incompressible, an upper bound)"
    )
    print(
        f"- 4096-tag model: {trainable:,} trainable parameters, {last_layer:,} in the last "
        f"layer; float32 gradient {gradient_bytes / 1e6:,.0f} MB per step, "
        f"{4 * last_layer / 1e6:,.0f} MB of it the last layer's"
    )
    print("\n## Assumed\n")
    for name in (
        "gpu_images_per_second", "batch_per_gpu", "gpus_per_machine", "cores_per_machine",
        "reader_threads", "input_images_per_second", "nvlink_gbps", "network_gbps",
    ):  # fmt: skip
        print(f"- `--{name.replace('_', '-')}` {getattr(args, name)}")

    disk = args.posts * disk_per_record
    build = args.posts / (decode_rate * args.cores_per_machine)
    print(f"\n## {args.posts:,} posts (from the medians)\n")
    print(f"- disk: {disk / 1e9:,.0f} GB of LevelDB (per machine: each reads its own copy)")
    print(
        f"- `--build` on one {args.cores_per_machine}-core machine: {build / 60:.0f} min of JPEG "
        "decoding (PNG originals decode in full, several times slower; LevelDB writes not counted)"
    )
    print(
        "\n| GPUs | machines | global batch | steps/epoch | compute | all-reduce | "
        "input (reader threads, capped) | input (all cores, uncapped) | epoch | bound by |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for gpus in GPUS:
        machines = math.ceil(gpus / args.gpus_per_machine)
        global_batch = gpus * args.batch_per_gpu
        steps = math.ceil(args.posts / global_batch)
        compute = args.posts / (gpus * args.gpu_images_per_second)
        reduce = steps * all_reduce_seconds(gradient_bytes, gpus, args)
        per_machine = min(args.reader_threads * read_rate, args.input_images_per_second)
        threads_input = args.posts / (machines * per_machine)
        cores_input = args.posts / (machines * args.cores_per_machine * read_rate)
        parts = {
            "compute + all-reduce": compute + reduce,
            f"input, {args.reader_threads} reader threads": threads_input,
        }
        bound = max(parts, key=parts.get)
        print(
            f"| {gpus} | {machines} | {global_batch} | {steps:,} | {compute / 60:.1f} min | "
            f"{reduce / 60:.1f} min | {threads_input / 60:.1f} min | {cores_input / 60:.1f} min "
            f"| {parts[bound] / 60:.1f} min | {bound} |"
        )
    for gpus in GPUS[1:]:
        sent = 2 * (gpus - 1) / gpus * gradient_bytes
        print(
            f"\nAll-reduce on {gpus} GPUs: {sent / 1e6:,.0f} MB sent per GPU per step, "
            f"{1e3 * all_reduce_seconds(gradient_bytes, gpus, args):.1f} ms."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
