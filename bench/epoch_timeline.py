"""Where a --train epoch's time goes on a GPU: when each training step ended and when each batch
was read, for the epoch after the first (compiled, warm). Run twice: as --train runs by default
(on an accelerator, whole batches only; the threads make the batches) and with a reader process
per core, at most 16, making them (--reader-processes).

    KERAS_BACKEND=jax python -m bench.epoch_timeline --data-dir /tmp/gpu-bench/data

Prints a timeline per run (seconds after the epoch's first step) and the epoch's images/s to
stdout. On the H100 a short last batch ended 1 to 6 s after the other 25 steps
(bench/measured/gpu-last-batch-*.log), which is why --train drops it on an accelerator.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import alti2v.train.batches
import alti2v.train.epoch
from alti2v.data.layout import DataDir
from alti2v.model.device import describe_device
from bench.common import run_cli

EVENTS: list[tuple[str, int, float, float]] = []  # (kind, index, start, end)


def _traced(function, kind: str, index_of):
    def traced(*args, **kwargs):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        EVENTS.append((kind, index_of(*args), started, time.perf_counter()))
        return result

    return traced


def _install_tracing() -> None:
    batches = alti2v.train.batches.PostBatches
    batches.__getitem__ = _traced(batches.__getitem__, "read", lambda _, index: index)
    watch = alti2v.train.epoch.BatchWatch
    watch.on_train_batch_end = _traced(
        watch.on_train_batch_end, "step", lambda _, batch, logs=None: batch
    )


def timeline(data: DataDir, batch_size: int, label: str, *flags: str) -> str:
    EVENTS.clear()
    started = time.perf_counter()
    run_cli("--train", "--data-dir", str(data.root), "--fresh", "--quiet", "--epochs", "2",
            "--batch-size", str(batch_size), "--weights", "none",
            "--precision", "bfloat16", *flags)  # fmt: skip
    steps = [event for event in EVENTS if event[0] == "step"]
    second_epoch = steps[max(i for i, event in enumerate(steps) if event[1] == 0) :]
    origin = second_epoch[0][3]
    reads = [event for event in EVENTS if event[0] == "read" and event[2] >= origin - 1]
    step_ends = " ".join(f"{i}:{end - origin:.2f}" for _, i, _, end in second_epoch)
    read_spans = " ".join(f"{i}:{a - origin:.2f}-{b - origin:.2f}" for _, i, a, b in reads)
    trained = (len(second_epoch) - 1) * batch_size  # the steps after the first one's end
    rate = trained / (second_epoch[-1][3] - origin)
    return "\n".join([
        f"== {label}: train() {time.perf_counter() - started:.1f} s; epoch 2: {rate:.0f} img/s",
        f"epoch 2 step ends: {step_ends}",
        f"reads (index:start-end; the last ones are the eval's): {read_spans}",
    ])  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="built by bench/gpu.sh")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    data = DataDir(args.data_dir)
    _install_tracing()
    print(describe_device())
    print(timeline(data, args.batch_size, "threads (the default)"), flush=True)
    processes = str(min(os.cpu_count() or 1, 16))
    print(timeline(data, args.batch_size, f"{processes} reader processes", "--reader-processes",
                   processes))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
