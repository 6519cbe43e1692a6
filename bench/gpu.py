"""Training throughput and model FLOPs utilisation (MFU), float32 against bfloat16, and whether
the LevelDB input pipeline keeps up (images/s of reading alone against training).

The pipeline is --train's: flip augmentation and `--train-readers` threads, making the batches
themselves (--reader-processes 0) or handing them to reader processes; reading alone is timed
for each count of processes asked, and fit() streamed with threads alone and with the most.

Run by bench/gpu.sh on a GPU machine (KERAS_BACKEND=jax), or anywhere with --cpu-smoke. MFU is
the model's training FLOPs (bench/flops.py) times images/s, over the device's peak: the peak this
run measures with a large matmul in the same dtype, and the vendor's dense figure where known.

    KERAS_BACKEND=jax python -m bench.gpu --data-dir /tmp/gpu-bench/data
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np

from alti2v.data.layout import DataDir
from alti2v.data.records import open_db, record_keys
from alti2v.model.device import describe_device
from alti2v.model.network import build_model
from alti2v.model.precision import POLICIES
from alti2v.train.augment import Augmenter
from alti2v.train.batches import PostBatches, RecordReader
from alti2v.train.readers import ReaderProcesses
from bench.common import compile_as_train, describe_machine, timed, timings
from bench.flops import model_flops

NUM_TAGS = 4096  # the original's vocabulary: the last layer's size matters for speed
# Vendor dense peaks, FLOP/s, by JAX device_kind ("float32" is TF32 tensor cores, which XLA uses
# for float32 matmuls and convolutions on this GPU by default).
# The H200 has the H100's arithmetic (its datasheet's dense figures are the same).
HOPPER = {"float32": 494.7e12, "bfloat16": 989.4e12}
VENDOR_PEAKS = {"NVIDIA H100 80GB HBM3": HOPPER, "NVIDIA H200": HOPPER}


def matmul_peak(dtype: str, size: int, times: int) -> float:
    """FLOP/s of a size x size matmul in `dtype` on the default device (best of `times`)."""
    left = keras.ops.ones((size, size), dtype=dtype)
    right = keras.ops.ones((size, size), dtype=dtype)
    keras.ops.convert_to_numpy(keras.ops.matmul(left, right)[0, 0])  # compile
    seconds = timings(
        lambda: keras.ops.convert_to_numpy(keras.ops.matmul(left, right)[0, 0]), times
    )
    return 2 * size**3 / min(seconds)


def read_rate(batches: PostBatches, workers: int) -> float:
    """Images/s of reading, augmenting and preprocessing batches with `workers` threads."""
    images = []

    def read_all() -> None:
        with ThreadPoolExecutor(workers) as pool:
            images.extend(
                len(batch[0]) for batch in pool.map(batches.__getitem__, range(len(batches)))
            )

    seconds = timed(read_all)
    return sum(images) / seconds


def train_rates(
    policy: str, batches: PostBatches, by_processes: PostBatches, steps: int, times: int
) -> dict:
    """Images/s of fit() streamed from LevelDB (threads alone, and with reader processes) and
    of the same batch held in memory."""
    keras.config.set_dtype_policy(policy)
    model = compile_as_train(build_model(NUM_TAGS, weights=None), steps)
    images, targets = batches[0]
    resident = _Resident(images, targets, steps)
    model.fit(resident, epochs=1, verbose=0, steps_per_epoch=2)  # compile outside the timing
    memory = timings(lambda: model.fit(resident, epochs=1, verbose=0), times)
    streamed_steps = min(steps, len(batches))

    def streamed_from(source: PostBatches) -> list[float]:
        return timings(
            lambda: model.fit(source, epochs=1, verbose=0, steps_per_epoch=streamed_steps), times
        )

    streamed, with_processes = streamed_from(batches), streamed_from(by_processes)
    keras.config.set_dtype_policy("float32")
    flops = model_flops(model)["train"]
    batch = len(images)
    return {
        "memory_images_per_second": [steps * batch / value for value in memory],
        "streamed_images_per_second": [streamed_steps * batch / value for value in streamed],
        "streamed_processes_images_per_second": [
            streamed_steps * batch / value for value in with_processes
        ],
        "train_flops_per_image": flops,
    }


class _Resident(keras.utils.PyDataset):
    """One batch served `steps` times: training speed with no input pipeline at all."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, steps: int):
        super().__init__()
        self.images, self.targets, self.steps = images, targets, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images, self.targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="built by bench/gpu.sh")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--readers",
        type=int,
        default=16,
        help="reader threads, alone and in fit() (as --train-readers)",
    )
    parser.add_argument(
        "--reader-processes",
        type=int,
        nargs="+",
        default=[1, 4, 8, 16],
        help="counts of reader processes to time reading alone with; fit() uses the last",
    )
    parser.add_argument("--matmul-size", type=int, default=8192)
    args = parser.parse_args()
    machine = describe_machine()
    device = describe_device()
    db = RecordReader(open_db(DataDir(args.data_dir).db))  # as --train reads
    keys = record_keys(db.db, "train")
    flip = Augmenter(("flip",), seed=0)
    batches = PostBatches(db, keys, args.batch_size, NUM_TAGS, "vgg", None, flip, 0, args.readers)
    kind = _device_kind()
    results = {"machine": machine, "device": device, "device_kind": kind, "args": vars(args)}
    results["read_images_per_second"] = [read_rate(batches, args.readers) for _ in range(3)]
    results["read_processes_images_per_second"] = {}
    for count in args.reader_processes:
        with ReaderProcesses(count, args.batch_size, 150, NUM_TAGS, "vgg", ("flip",), 0) as pool:
            threads = max(args.readers, count)
            by_processes = _with_processes(batches, pool, threads)
            rates = [read_rate(by_processes, threads) for _ in range(3)]
            results["read_processes_images_per_second"][count] = rates
    count = args.reader_processes[-1]
    pool = ReaderProcesses(count, args.batch_size, 150, NUM_TAGS, "vgg", ("flip",), 0)
    by_processes = _with_processes(batches, pool, max(args.readers, count))
    for name, policy in POLICIES.items():
        peak = matmul_peak(name, args.matmul_size, args.repeats)
        rates = train_rates(policy, batches, by_processes, args.steps, args.repeats)
        best = max(rates["memory_images_per_second"])
        flop_rate = best * rates["train_flops_per_image"]
        vendor = VENDOR_PEAKS.get(kind, {}).get(name)
        results[name] = {
            **rates,
            "matmul_flops_per_second": peak,
            "mfu_vs_measured_matmul": flop_rate / peak,
            "mfu_vs_vendor_peak": flop_rate / vendor if vendor else None,
        }
    pool.close()
    db.close()
    print(json.dumps(results, default=str, indent=1))
    print(summary(results), file=sys.stderr)
    return 0


def _with_processes(batches: PostBatches, pool: ReaderProcesses, readers: int) -> PostBatches:
    return PostBatches(
        batches.db, batches.keys, batches.batch_size, batches.num_tags, batches.preprocess,
        None, batches.augment, batches.epoch, readers, pool,
    )  # fmt: skip


def _device_kind() -> str:
    if keras.backend.backend() != "jax":
        return "cpu"
    import jax

    return jax.devices()[0].device_kind


def summary(results: dict) -> str:
    read = statistics.median(results["read_images_per_second"])
    by_processes = {
        count: statistics.median(rates)
        for count, rates in results["read_processes_images_per_second"].items()
    }
    lines = [
        results["device"],
        f"input pipeline alone: {read:.0f} img/s with threads; with reader processes "
        + ", ".join(f"{count}: {rate:.0f}" for count, rate in by_processes.items()),
    ]
    read = max(read, *by_processes.values())
    for name in POLICIES:
        entry = results[name]
        memory = statistics.median(entry["memory_images_per_second"])
        streamed = statistics.median(entry["streamed_images_per_second"])
        with_processes = statistics.median(entry["streamed_processes_images_per_second"])
        vendor = entry["mfu_vs_vendor_peak"]
        lines.append(
            f"{name}: {memory:.1f} img/s from memory, {streamed:.1f} streamed with threads, "
            f"{with_processes:.1f} with reader processes; MFU "
            f"{entry['mfu_vs_measured_matmul']:.0%} of the measured {name} matmul "
            f"({entry['matmul_flops_per_second'] / 1e12:.3g} TFLOP/s)"
            + (f", {vendor:.0%} of the vendor peak" if vendor else "")
            + f"; input pipeline (its best) {read / memory:.1f}x training"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
