"""bfloat16 against float32 on this machine: images/s of a --train step and of a --pred forward
pass of the real network (4096 tags, random weights: speed does not depend on them; batch 16;
inputs from memory), each precision in a process of its own, beside the float32 and bfloat16
matmul rates measured in the same run, and what `--precision auto` chooses here and why.

    python -m bench.precision            # a markdown table on stdout, kept in bench/measured/
    python -m bench.precision --quick    # 64 tags, fewer steps: a smoke run

"Of matmul" is the model's FLOPs per second (bench/flops.py) as a share of that precision's
matmul rate: how much of what the processor does in that precision the network gets.
"""

from __future__ import annotations

import argparse
import json
import statistics

from bench.common import child_result, markdown_header, timed, write_measured

PRECISIONS = ("float32", "bfloat16")


def measure_model(precision: str, num_tags: int, batch: int, steps: int, repeats: int) -> dict:
    """Training and prediction images/s of the network computing in `precision`."""
    import keras
    import numpy as np

    from alti2v.model.network import build_model
    from alti2v.model.precision import use_precision
    from bench.common import compile_as_train
    from bench.flops import model_flops

    use_precision(precision)
    keras.utils.set_random_seed(0)
    model = compile_as_train(build_model(num_tags, weights=None), steps_per_epoch=1000)
    rng = np.random.default_rng(0)
    images = rng.uniform(-120, 140, (batch, 150, 150, 3)).astype(np.float32)
    targets = (rng.uniform(size=(batch, num_tags)) < 0.01).astype(np.float32)

    def train() -> None:
        for _ in range(steps):
            model.train_on_batch(images, targets)

    def predict() -> None:
        for _ in range(steps):
            model.predict_on_batch(images)

    train()  # compiles the step
    predict()
    rates = {"train": [], "predict": []}
    for _ in range(repeats):  # interleaved, so that load on the machine hits both alike
        rates["train"].append(steps * batch / timed(train))
        rates["predict"].append(steps * batch / timed(predict))
    return {"precision": precision, "images_per_second": rates, "flops": model_flops(model)}


def measure_matmul(size: int, repeats: int) -> dict[str, float]:
    """GFLOP/s of a size x size matmul in each precision (best of `repeats` after a warm-up)."""
    import keras

    rates = {}
    for precision in PRECISIONS:
        matrix = keras.ops.ones((size, size), dtype=precision)

        def product(matrix=matrix) -> None:
            keras.ops.convert_to_numpy(
                keras.ops.cast(keras.ops.matmul(matrix, matrix)[0, 0], "float32")
            )

        product()
        rates[precision] = 2 * size**3 / min(timed(product) for _ in range(repeats)) / 1e9
    return rates


def table(models: dict[str, dict], matmul: dict[str, float], chosen: str) -> str:
    rows = [
        "| | float32 | bfloat16 | bfloat16 / float32 |",
        "|---|---|---|---|",
    ]
    for task in ("train", "predict"):
        rate = {name: statistics.median(models[name]["images_per_second"][task]) for name in models}
        share = {
            name: rate[name] * models[name]["flops"][task] / (matmul[name] * 1e9) for name in models
        }
        rows.append(
            f"| {task}, img/s (median) | {rate['float32']:.2f} ({share['float32']:.0%} of matmul) "
            f"| {rate['bfloat16']:.2f} ({share['bfloat16']:.0%} of matmul) "
            f"| {rate['bfloat16'] / rate['float32']:.2f}x |"
        )
    rows.append(
        f"| matmul, GFLOP/s | {matmul['float32']:.0f} | {matmul['bfloat16']:.0f} "
        f"| {matmul['bfloat16'] / matmul['float32']:.2f}x |"
    )
    return "\n".join(rows) + f"\n\n`--precision auto` here: {chosen}\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 tags, 2 steps, 2 repeats")
    parser.add_argument("--tags", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per precision and task")
    # 2048: on the 2-core EPYC a 4096 float32 matmul ran at half the 2048 rate (71 against 149
    # GFLOP/s), below what the network's own convolutions reach.
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--child", choices=(*PRECISIONS, "matmul"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.tags, args.steps, args.repeats, args.matmul_size = 64, 2, 2, 1024
    if args.child == "matmul":
        print(json.dumps(measure_matmul(args.matmul_size, args.repeats)))
        return
    if args.child:
        print(json.dumps(measure_model(args.child, args.tags, args.batch_size, args.steps,
                                       args.repeats)))  # fmt: skip
        return
    from alti2v.model.precision import choose_precision

    shared = ["--tags", str(args.tags), "--batch-size", str(args.batch_size), "--steps",
              str(args.steps), "--repeats", str(args.repeats), "--matmul-size",
              str(args.matmul_size)]  # fmt: skip
    matmul = child_result("bench.precision", "--child", "matmul", *shared)
    models = {
        name: child_result("bench.precision", "--child", name, *shared) for name in PRECISIONS
    }
    text = (
        markdown_header(f"bfloat16 against float32: {args.tags} tags, batch {args.batch_size}")
        + table(models, matmul, str(choose_precision("auto")))
        + "\n```\n"
        + "\n".join(json.dumps(result) for result in [matmul, *models.values()])
        + "\n```\n"
    )
    print(text)
    if not args.quick:
        write_measured(text, "precision")


if __name__ == "__main__":
    main()
