"""Training, prediction and checkpointing against the machine's own limits, in one run.

- matmul: float32 FLOP/s of a 2048x2048 matmul through Keras (bench/gpu.py's matmul_peak, best
  of 10), at the start and at the end of the run; the higher is the machine's rate.
- train: the real model (4096 tags, batch 16, random weights: speed does not depend on them),
  `--steps` training steps streamed from LevelDB (PostBatches, as --train reads) alternated
  `--rounds` times with the same batches from memory, each step timed from the end of the one
  before (so fit()'s set-up is left out). Images/s times the training FLOPs per image
  (bench/flops.py) is the fraction of the matmul rate training reaches.
- checkpoint: save_checkpoint of that model with its Adam state, against the training time of
  one epoch of `--epoch-posts` posts at the streamed rate, and against CHECKPOINT_MINUTES.
- pred: `alt_i2v.py --pred IMAGE` as a user runs it, process start to the printed tags, next to
  a process timing its phases (imports, model load, first prediction); then images/s of
  predict_images on a folder of Danbooru-sized JPEGs (bench/images.py) against the FLOP bound.

Raw output: bench/measured/compute-limits-<date>.md.

    python -m bench.compute_limits
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    child_result,
    compile_as_train,
    in_memory,
    markdown_header,
    spread,
    timed,
    write_measured,
)

# Only the standard library above (bench.common imports no more): `--phases` times the imports
# of a cold --pred itself.
NUM_TAGS = 4096
BATCH_SIZE = 16


def matmul_rate() -> float:
    from bench.gpu import matmul_peak

    return matmul_peak("float32", 2048, 10)


def bench_train(scratch: Path, steps: int, rounds: int):
    """(model, streamed step seconds per round, in-memory step seconds per round)."""
    import keras
    import numpy as np

    from alti2v.data.records import open_db, pack_record, record_key
    from alti2v.model.network import build_model
    from alti2v.train.batches import PostBatches

    class StepEnds(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    def step_seconds(fit) -> list[float]:
        # Between consecutive step ends: what a step costs inside a long epoch, the reading
        # of its batch included; each fit()'s set-up and first step are left out.
        step_ends = StepEnds()
        fit(step_ends)
        return np.diff(step_ends.ends).tolist()

    rng = np.random.default_rng(0)
    db = open_db(scratch / "train.ldb", create=True)
    keys = [record_key("train", str(index)) for index in range(steps * BATCH_SIZE)]
    for key in keys:
        pixels = rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
        db.put(key, pack_record(pixels, rng.choice(NUM_TAGS, 20, replace=False).tolist()))
    batches = PostBatches(db, keys, BATCH_SIZE, NUM_TAGS, "vgg")
    images, targets = in_memory(batches)
    keras.utils.set_random_seed(0)
    model = compile_as_train(build_model(NUM_TAGS, weights=None), len(batches))

    def streamed(callback) -> None:
        model.fit(batches, epochs=1, verbose=0, shuffle=False, callbacks=[callback])

    def memory(callback) -> None:
        model.fit(images, targets, BATCH_SIZE, verbose=0, shuffle=False, callbacks=[callback])

    streamed(StepEnds()), memory(StepEnds())  # trace both paths outside the timing
    timings = {"streamed": [], "memory": []}
    for _ in range(rounds):  # alternated, so that the load of a shared machine hits both alike
        timings["streamed"].append(step_seconds(streamed))
        timings["memory"].append(step_seconds(memory))
    db.close()
    return model, timings["streamed"], timings["memory"]


def bench_checkpoint(scratch: Path, model, saves: int) -> tuple[list[float], int]:
    """Seconds of each save_checkpoint, and the bytes of one checkpoint."""
    from alti2v.train.checkpoints import TrainState, save_checkpoint

    folder = scratch / "checkpoints"
    folder.mkdir()
    seconds = []
    for step in range(saves):
        state = TrainState(config={}, vocab_hash="bench", num_tags=NUM_TAGS, step=step)
        seconds.append(timed(save_checkpoint, folder, model, state))
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    shutil.rmtree(folder)
    return seconds, size


def cold_phases(model: Path, image: Path) -> dict[str, float]:
    """Seconds from process start to the end of each phase of one cold prediction."""
    started = time.time()  # wall clock: the child's marks are time.time() too
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    marks = child_result(
        "bench.compute_limits", "--phases", str(model), str(image), env=environment
    )
    return {phase: mark - started for phase, mark in marks.items()}


def run_phases(model: Path, image: Path) -> None:
    marks = {"interpreter started": time.time()}
    from alti2v.model.saved import load_model
    from alti2v.tag.inputs import InputImage
    from alti2v.tag.predict import predict_images

    marks["imports (Keras, TensorFlow)"] = time.time()
    loaded = load_model(model)
    marks["model loaded"] = time.time()
    list(predict_images(loaded, [InputImage(image, image.parent)], batch_size=1))
    marks["first prediction"] = time.time()
    print(json.dumps(marks))


def bench_folder(model: Path, images: list[Path], repeats: int) -> tuple[list[float], float]:
    """Images/s of predict_images on the folder per repeat, and of the forward pass alone."""
    import numpy as np

    from alti2v.data.images import load_image, to_model_input
    from alti2v.model.saved import load_model
    from alti2v.tag.inputs import InputImage
    from alti2v.tag.predict import predict_images

    loaded = load_model(model)
    inputs = [InputImage(path, path.parent) for path in images]
    list(predict_images(loaded, inputs[:BATCH_SIZE]))  # trace outside the timing
    rates = [
        len(inputs) / timed(lambda: list(predict_images(loaded, inputs))) for _ in range(repeats)
    ]
    batch = to_model_input(np.stack([load_image(path) for path in images[:BATCH_SIZE]]), "vgg")
    forward = min(timed(lambda: loaded.model.predict_on_batch(batch)) for _ in range(3))
    return rates, BATCH_SIZE / forward


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="training steps per fit()")
    parser.add_argument("--rounds", type=int, default=3, help="alternated pairs of fit()")
    parser.add_argument("--saves", type=int, default=2, help="checkpoints saved")
    parser.add_argument("--epoch-posts", type=int, default=1000, help="posts of the epoch")
    parser.add_argument("--images", type=int, default=64, help="images of the --pred folder")
    parser.add_argument("--cold-starts", type=int, default=2, help="cold --pred runs")
    parser.add_argument("--phases", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phases:
        run_phases(*args.phases)
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from alti2v import defaults
    from bench.flops import model_flops
    from bench.images import DANBOORU_CACHE, danbooru_posts
    from bench.pred_speed import cli_run, export_small_model

    header = markdown_header(
        "Training, prediction and checkpoints against the machine's limits",
        "python -m bench.compute_limits",
    )
    images = danbooru_posts(DANBOORU_CACHE / "imgs", args.images)
    matmul_start = matmul_rate()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        model, streamed, memory = bench_train(scratch, args.steps, args.rounds)
        flops = model_flops(model)
        saves, checkpoint_bytes = bench_checkpoint(scratch, model, args.saves)
        del model
        exported = export_small_model(scratch / "models", NUM_TAGS)
        # (seconds to the printed tags, to exit) of `alt_i2v.py --pred IMAGE --quiet`
        cold = [cli_run(exported, images[0]) for _ in range(args.cold_starts)]
        phases = cold_phases(exported, images[0])
        folder_rates, forward_rate = bench_folder(exported, images, 2)
    matmul_end = matmul_rate()
    peak = max(matmul_start, matmul_end)
    streamed_rate = BATCH_SIZE / statistics.median(itertools.chain(*streamed))
    memory_rate = BATCH_SIZE / statistics.median(itertools.chain(*memory))
    overheads = [
        statistics.median(one) / statistics.median(other) - 1
        for one, other in zip(streamed, memory, strict=True)
    ]
    train_posts = round(args.epoch_posts * (1 - defaults.EVAL_FRACTION))
    epoch_seconds = train_posts / streamed_rate
    save_seconds = statistics.median(saves)
    pred_bound = peak / flops["predict"]
    folder_rate = statistics.median(folder_rates)
    results = {
        "matmul_float32_gflops": [matmul_start / 1e9, matmul_end / 1e9],
        "train_gflop_per_image": flops["train"] / 1e9,
        "predict_gflop_per_image": flops["predict"] / 1e9,
        "train_step_seconds_streamed": streamed,
        "train_step_seconds_memory": memory,
        "checkpoint_seconds": saves,
        "checkpoint_bytes": checkpoint_bytes,
        "epoch_train_posts": train_posts,
        "cold_start_seconds_printed_exit": cold,
        "cold_start_phases_seconds": phases,
        "pred_folder_images_per_second": folder_rates,
        "pred_forward_only_images_per_second": forward_rate,
    }
    lines = [
        f"float32 matmul (2048x2048, best of 10): {matmul_start / 1e9:.1f} GFLOP/s at the start, "
        f"{matmul_end / 1e9:.1f} at the end; {peak / 1e9:.1f} is the rate used below. FLOPs per "
        f"image (bench/flops.py): training {flops['train'] / 1e9:.2f} G, prediction "
        f"{flops['predict'] / 1e9:.2f} G.\n",
        "| stage | figure | baseline | ratio |",
        "|---|---|---|---|",
        f"| training, {NUM_TAGS} tags, batch {BATCH_SIZE}: input pipeline (LevelDB stream vs the "
        f"same batches in memory; {args.rounds} alternated fit() calls of {args.steps} steps, "
        f"the median step of each) | "
        f"{streamed_rate:.2f} img/s | {memory_rate:.2f} img/s | pipeline cost per pair of "
        f"fit() calls: {spread([100 * value for value in overheads], '.1f')} % |",
        f"| training throughput against the matmul rate | {streamed_rate:.2f} img/s x "
        f"{flops['train'] / 1e9:.2f} GFLOP = {streamed_rate * flops['train'] / 1e9:.1f} GFLOP/s |"
        f" {peak / 1e9:.1f} GFLOP/s | **{streamed_rate * flops['train'] / peak:.0%}** |",
        f"| checkpoint (model + Adam state, {checkpoint_bytes / 1e9:.2f} GB) against one epoch of "
        f"{args.epoch_posts} posts ({train_posts} trained, at {streamed_rate:.2f} img/s) | "
        f"{save_seconds:.1f} s ({spread(saves, '.1f')}) | {epoch_seconds:.0f} s | "
        f"**{save_seconds / epoch_seconds:.1%}** |",
        f"| smallest epoch whose checkpoint costs under 10% | {save_seconds:.1f} s | "
        f"{10 * save_seconds:.0f} s = {10 * save_seconds * streamed_rate:.0f} trained images | "
        f"10% |",
        f"| checkpoint against the in-epoch interval (CHECKPOINT_MINUTES) | {save_seconds:.1f} s |"
        f" {defaults.CHECKPOINT_MINUTES * 60:.0f} s | "
        f"{save_seconds / (defaults.CHECKPOINT_MINUTES * 60):.1%} |",
        f"| `--pred` cold start, one image ({NUM_TAGS} tags): process start to printed tags | "
        f"{spread([printed for printed, _ in cold])} s | - | to exit: "
        f"{spread([total for _, total in cold])} s |",
        f"| `--pred` on a folder of {len(images)} Danbooru-sized JPEGs, batches of {BATCH_SIZE} |"
        f" {folder_rate:.2f} img/s ({spread(folder_rates)}) | FLOP bound {pred_bound:.2f} img/s "
        f"| **{folder_rate / pred_bound:.0%}** |",
        f"| forward pass alone, a batch of {BATCH_SIZE} from memory (best of 3) | "
        f"{forward_rate:.2f} img/s | FLOP bound {pred_bound:.2f} img/s | "
        f"{forward_rate / pred_bound:.0%} |",
        "",
        "Cold start, one process timing its phases (seconds from process start):",
        "",
        *(f"- {phase}: {seconds:.2f}" for phase, seconds in phases.items()),
    ]
    text = header + "\n".join(lines) + "\n\n```json\n" + json.dumps(results, indent=1) + "\n```\n"
    print(text)
    write_measured(text, "compute-limits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
