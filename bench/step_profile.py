"""Where a training step's time goes, in each precision: the real network (4096 tags, batch 16,
random weights, inputs from memory) timed whole and with one part taken away at a time, each
configuration in a process of its own, all in one run so that the differences are comparable.

- predict, frozen part: the first 12 layers (input through block4_conv1), forward only;
- predict: the whole network forward;
- train: a --train step (forward, backward, AdamW update);
- train, 64 tags: the same with a 64-wide last Dense (2.1M instead of 134M weights), so the
  difference is what the big last layer's gradient and its update cost;
- train, head only: every VGG16 layer frozen, so the difference is the backward pass and the
  update of the unfrozen convolution blocks (block4_conv2 to block5_conv3);
- train, batch 64: the same step on 64 images, per image, for what a larger batch would buy;
- train, batch 8 (and with 64 tags): per image, what a smaller batch costs;
- train, one rate: the blocks at the head's rate (--backbone-lr-scale 1, plain Adam), for what
  the default's slower blocks cost.

    python -m bench.step_profile            # a markdown table on stdout, kept in bench/measured/
    python -m bench.step_profile --quick    # fewer steps: a smoke run
    python -m bench.step_profile --only train "train, one rate"   # those, alternated, no parts
"""

from __future__ import annotations

import argparse
import json
import statistics

from bench.common import child_result, markdown_header, timed, write_measured

PRECISIONS = ("float32", "bfloat16")
FROZEN = 12  # --freeze's default: the first 12 layers keep their weights
VGG_LAYERS = 19  # keras.applications.VGG16 without its top: input and 18 layers
# name -> (task, tags, freeze, batch, --backbone-lr-scale or None for the default)
CONFIGURATIONS = {
    "predict, frozen part": ("predict-frozen", 4096, FROZEN, 16, None),
    "predict": ("predict", 4096, FROZEN, 16, None),
    "train": ("train", 4096, FROZEN, 16, None),
    "train, 64 tags": ("train", 64, FROZEN, 16, None),
    "train, head only": ("train", 4096, VGG_LAYERS, 16, None),
    "train, batch 64": ("train", 4096, FROZEN, 64, None),
    "train, batch 8": ("train", 4096, FROZEN, 8, None),
    "train, 64 tags, batch 8": ("train", 64, FROZEN, 8, None),
    "train, one rate": ("train", 4096, FROZEN, 16, 1.0),
}


def measure(precision: str, name: str, steps: int, repeats: int) -> dict:
    """Milliseconds per image of one configuration (median of `repeats` timings)."""
    import keras
    import numpy as np

    from alti2v.model.network import build_model
    from alti2v.model.precision import use_precision
    from bench.common import compile_as_train

    task, num_tags, freeze, batch, backbone_lr_scale = CONFIGURATIONS[name]
    use_precision(precision)
    keras.utils.set_random_seed(0)
    model = compile_as_train(
        build_model(num_tags, weights=None, freeze=freeze), 1000, backbone_lr_scale
    )
    if task == "predict-frozen":
        model = keras.Model(model.input, model.layers[FROZEN - 1].output)
    rng = np.random.default_rng(0)
    images = rng.uniform(-120, 140, (batch, 150, 150, 3)).astype(np.float32)
    targets = (rng.uniform(size=(batch, num_tags)) < 0.01).astype(np.float32)

    def step() -> None:
        for _ in range(steps):
            if task == "train":
                model.train_on_batch(images, targets)
            else:
                model.predict_on_batch(images)

    step()  # compiles it
    seconds = [timed(step) for _ in range(repeats)]
    return {
        "precision": precision,
        "configuration": name,
        "ms_per_image": [1000 * value / (steps * batch) for value in seconds],
    }


def table(results: list[dict]) -> str:
    median = {
        (result["precision"], result["configuration"]): statistics.median(result["ms_per_image"])
        for result in results
    }

    def part(precision: str, whole: str, without: str | None = None) -> float:
        return median[precision, whole] - (median[precision, without] if without else 0)

    parts = {
        "frozen layers, forward": ("predict, frozen part", None),
        "trainable layers, forward": ("predict", "predict, frozen part"),
        "whole forward (predict)": ("predict", None),
        "last Dense's gradient and update (4096 against 64 tags)": ("train", "train, 64 tags"),
        "conv blocks' backward and update": ("train", "train, head only"),
        "the rest of the step (head's backward, loss, casts, optimizer)": None,
        "train step": ("train", None),
        "train step at batch 64": ("train, batch 64", None),
        "train step at batch 8": ("train, batch 8", None),
        "train step, 64 tags": ("train, 64 tags", None),
        "train step, 64 tags, batch 8": ("train, 64 tags, batch 8", None),
        "train step, the blocks at the head's rate (Adam)": ("train, one rate", None),
    }
    rows = ["| ms per image | float32 | bfloat16 | bfloat16 / float32 |", "|---|---|---|---|"]
    for label, parts_of in parts.items():
        values = {}
        for precision in PRECISIONS:
            if parts_of is None:
                values[precision] = (
                    part(precision, "train")
                    - part(precision, "predict")
                    - part(precision, "train", "train, 64 tags")
                    - part(precision, "train", "train, head only")
                )
            else:
                values[precision] = part(precision, *parts_of)
        ratio = values["bfloat16"] / values["float32"] if values["float32"] > 0 else float("nan")
        rows.append(
            f"| {label} | {values['float32']:.1f} | {values['bfloat16']:.1f} | {ratio:.2f}x |"
        )
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 step, 2 repeats")
    parser.add_argument("--steps", type=int, default=2, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=3, help="timings per configuration")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=CONFIGURATIONS,
        metavar="CONFIGURATION",
        help="time these configurations only, each --rounds times in turn, and list them "
        "without the parts table",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --only: rounds of them all")
    parser.add_argument("--child", nargs=2, metavar=("PRECISION", "CONFIGURATION"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 1, 2
    if args.child:
        print(json.dumps(measure(*args.child, args.steps, args.repeats)))
        return
    timing = ["--steps", str(args.steps), "--repeats", str(args.repeats)]
    if args.only:
        _only(args.only, args.rounds, timing, args.quick)
        return
    results = [
        child_result("bench.step_profile", "--child", precision, name, *timing)
        for name in CONFIGURATIONS
        for precision in PRECISIONS
    ]
    text = (
        markdown_header("Where a training step's time goes, float32 against bfloat16")
        + table(results)
        + "\n```\n"
        + "\n".join(json.dumps(result) for result in results)
        + "\n```\n"
    )
    print(text)
    if not args.quick:
        write_measured(text, "step-profile")


def _only(names: list[str], rounds: int, timing: list[str], quick: bool) -> None:
    """The configurations in turn, `rounds` times, so that a change of load falls on all."""
    results = [
        child_result("bench.step_profile", "--child", precision, name, *timing)
        for _ in range(rounds)
        for name in names
        for precision in PRECISIONS
    ]
    rows = ["| configuration | precision | ms per image, median of rounds | each round |",
            "|---|---|---|---|"]  # fmt: skip
    for name in names:
        for precision in PRECISIONS:
            medians = [
                statistics.median(result["ms_per_image"])
                for result in results
                if (result["configuration"], result["precision"]) == (name, precision)
            ]
            each = " ".join(f"{value:.1f}" for value in medians)
            rows.append(f"| {name} | {precision} | {statistics.median(medians):.1f} | {each} |")
    text = (
        markdown_header("Training steps, chosen configurations alternated")
        + "\n".join(rows)
        + "\n\n```\n"
        + "\n".join(json.dumps(result) for result in results)
        + "\n```\n"
    )
    print(text)
    if not quick:
        write_measured(text, "step-profile-only")


if __name__ == "__main__":
    main()
