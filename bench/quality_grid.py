"""Run bench/quality.py for each training choice the README reports, on several data seeds, and
tabulate mean and spread against approach 3 on the same posts.

Each variant changes a few settings from the defaults; the table is how the defaults were
chosen. On 2 CPU cores one run takes 4 to 6 minutes; on a GPU use --parallel. Flags it does not
know are passed on to every bench/quality.py run. Each run's JSON line is appended to
--results; a run that fails is a row naming its log, and the grid exits with status 1.

    python -m bench.quality_grid --only defaults seed-recipe --seeds 7 17 27
    python -m bench.quality_grid --table bench/measured/quality-recipe-*.jsonl   # no runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alti2v.data.files import json_object
from bench.common import REPOSITORY, last_json_line
from bench.quality import HELDOUT_COUNT, TRAIN_COUNT, image_cache

# The recipe before this search: bench/quality.py's flags that restore it whatever the defaults.
SEED_RECIPE = ["--augment", "none", "--dropout", "0", "--weight-decay", "0",
               "--backbone-lr-scale", "1", "--head-epochs", "0", "--loss", "bce",
               "--label-smoothing", "0", "--bias-init", "zeros", "--learning-rate", "1e-4",
               "--batch-size", "16", "--head-init", "random"]  # fmt: skip

FLIP = [*SEED_RECIPE, "--augment", "flip"]
# The defaults from the sixth round (zero head, prior bias) until issue 23's faster head.
ZERO_HEAD = ["--learning-rate", "1e-4", "--backbone-lr-scale", "1"]

VARIANTS = {
    "defaults": [],
    "seed-recipe": SEED_RECIPE,
    # The recipe search of issue 11, each from the seed recipe.
    "flip": FLIP,
    "flip-crop": [*SEED_RECIPE, "--augment", "flip,crop"],
    "flip-batch8": [*SEED_RECIPE, "--augment", "flip", "--batch-size", "8"],
    "flip-asl": [*SEED_RECIPE, "--augment", "flip", "--loss", "asl"],
    "flip-head1": [*SEED_RECIPE, "--augment", "flip", "--head-epochs", "1"],
    "dropout0.3": [*SEED_RECIPE, "--dropout", "0.3"],
    "head-lr1e-3-bb0.1": [*SEED_RECIPE, "--learning-rate", "1e-3", "--backbone-lr-scale", "0.1"],
    # The second round, each from flip.
    "flip-lr3e-4-bb0.33": [*FLIP, "--learning-rate", "3e-4", "--backbone-lr-scale", "0.333"],
    "flip-lr2e-4": [*FLIP, "--learning-rate", "2e-4"],
    "flip-bb0.5": [*FLIP, "--backbone-lr-scale", "0.5"],
    "flip-prior": [*FLIP, "--bias-init", "prior"],
    "flip-light": [*FLIP, "--augment", "flip,light"],
    "flip-ls0.1": [*FLIP, "--label-smoothing", "0.1"],
    "flip-eval0.2": [*FLIP, "--eval-fraction", "0.2"],  # --train's default split: 480 posts
    # AdamW's decay shrinks weights by learning rate x decay per step: at 1e-4, these shrink
    # them by 1.9% and 19% over the 190 steps of 5 epochs (0.05 would shrink them 0.1%).
    "flip-wd1": [*FLIP, "--weight-decay", "1"],
    "flip-wd10": [*FLIP, "--weight-decay", "10"],
    # Twice the training posts (the held-out 200 stay).
    "flip-2x": [*FLIP, "--train-count", "1200"],
    "flip-10ep": [*FLIP, "--epochs", "10"],
    "flip-4x": [*FLIP, "--train-count", "2400"],
    # The fifth round: the head starts as approach 3's linear probe (LP-FT).
    "flip-lpft": [*FLIP, "--head-init", "linear-probe"],
    # flip-bb2 (--backbone-lr-scale 2) and flip-lpft-head1e-5 (--learning-rate 1e-5
    # --backbone-lr-scale 10) ran before --train limited the scale to [0, 1]; bench.quality takes
    # the CLI's checks, so they stay as measured (bench/measured/quality-recipe-20261127[bd]).
    # The sixth round: the last Dense's kernel starts at zero (Big Transfer's head).
    "zero": [*FLIP, "--head-init", "zero"],
    "zero-prior": [*FLIP, "--head-init", "zero", "--bias-init", "prior"],
    "zero-lr2e-4": [*FLIP, "--head-init", "zero", "--learning-rate", "2e-4"],
    "zero-prior-warm0.5": [*FLIP, "--head-init", "zero", "--bias-init", "prior",
                           "--warmup-epochs", "0.5"],
    "zero-prior-10ep": [*FLIP, "--head-init", "zero", "--bias-init", "prior", "--epochs", "10"],
    "zero-prior-2x": [*FLIP, "--head-init", "zero", "--bias-init", "prior",
                      "--train-count", "1200"],
    # The noise of one run: the same data seed, another training seed.
    "flip-tseed8": [*FLIP, "--train-seed", "8"],
    "zero-prior-tseed8": [*FLIP, "--head-init", "zero", "--bias-init", "prior",
                          "--train-seed", "8"],
    "seed-recipe-2x": [*SEED_RECIPE, "--train-count", "1200"],
    # --cache-features (issue 9): the seed recipe trained from float16 features of the frozen
    # layers, against seed-recipe from pixels.
    "cached-f16": [*SEED_RECIPE, "--cache-features"],
    # Earlier choices (the GPU grid of bench/measured/gpu-grid-*.md).
    "raw": ["--preprocess", "raw"],
    "nearest": ["--resize", "nearest"],
    "original": [*SEED_RECIPE, "--preprocess", "raw", "--resize", "nearest",
                 "--learning-rate", "1e-3", "--warmup-epochs", "0"],
    "lr1e-3": [*SEED_RECIPE, "--learning-rate", "1e-3"],
    "lr3e-5": [*SEED_RECIPE, "--learning-rate", "3e-5"],
    "no-warmup": ["--warmup-epochs", "0"],
    "cosine": ["--schedule", "cosine"],
    # Issue 22: the defaults trained in each precision (--precision auto picks one by machine).
    "float32": [*ZERO_HEAD, "--precision", "float32"],
    "bfloat16": [*ZERO_HEAD, "--precision", "bfloat16"],
    # The float16 feature cache under each precision (the cache holds float16 either way).
    "cached-f16-float32": [*SEED_RECIPE, "--cache-features", "--precision", "float32"],
    "cached-f16-bfloat16": [*SEED_RECIPE, "--cache-features", "--precision", "bfloat16"],
    # Issue 23: the rest of the gap after 5 epochs, each a change to the zero head's recipe in
    # bfloat16 (which trains as float32 does: bench/measured/precision-quality-20261203.md).
    # bf16-head3x became the defaults: "defaults" is it, in the precision --precision auto picks.
    "bf16-batch8": [*ZERO_HEAD, "--precision", "bfloat16", "--batch-size", "8"],
    "bf16-head2x": [*ZERO_HEAD, "--precision", "bfloat16", "--learning-rate", "2e-4",
                    "--backbone-lr-scale", "0.5"],
    "bf16-head3x": [*ZERO_HEAD, "--precision", "bfloat16", "--learning-rate", "3e-4",
                    "--backbone-lr-scale", "0.3333"],
    "bf16-head4x": [*ZERO_HEAD, "--precision", "bfloat16", "--learning-rate", "4e-4",
                    "--backbone-lr-scale", "0.25"],
    "bf16-head3x-batch8": [*ZERO_HEAD, "--precision", "bfloat16", "--learning-rate", "3e-4",
                           "--backbone-lr-scale", "0.3333", "--batch-size", "8"],
    "bf16-cosine2e-4": [*ZERO_HEAD, "--precision", "bfloat16", "--schedule", "cosine",
                        "--learning-rate", "2e-4"],
    # With ALTI2V_PROTO_EMA=0.98 and bench/measured/ema-prototype-20261203.patch applied.
    "bf16-head2x-ema0.98": [*ZERO_HEAD, "--precision", "bfloat16", "--learning-rate", "2e-4",
                            "--backbone-lr-scale", "0.5"],
    "defaults-10ep": ["--epochs", "10"],
    # Around the chosen defaults (head 3e-4): the blocks slower or faster, the warm-up shorter
    # or longer.
    "defaults-blocks5e-5": ["--backbone-lr-scale", "0.1667"],
    "defaults-blocks1.5e-4": ["--backbone-lr-scale", "0.5"],
    "defaults-warm0.5": ["--warmup-epochs", "0.5"],
    "defaults-warm2": ["--warmup-epochs", "2"],
    "defaults-asl": ["--loss", "asl"],  # rare positives: the easy negatives down-weighted
    "defaults-2x": ["--train-count", "1200"],
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("bench/results/grid"), help="scratch")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once")
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="default: all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7], help="synthetic data seeds")
    parser.add_argument("--train-count", type=int, default=TRAIN_COUNT, help="training posts")
    parser.add_argument("--heldout-count", type=int, default=HELDOUT_COUNT, help="held-out posts")
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("bench/results/grid.jsonl"),
        help="JSON lines file each run's result is appended to",
    )
    parser.add_argument(
        "--table", type=Path, nargs="+", help="only tabulate these JSON lines files; run nothing"
    )
    args, passthrough = parser.parse_known_args(argv)
    if args.table:
        results = [json_object(line) for path in args.table for line in path.open() if line.strip()]
        print(table(results))
        return 0
    work_dir = args.work.resolve()  # the variants run from the repository root
    for seed in args.seeds:  # the image caches, made once before the runs read them side by side
        image_cache(work_dir, seed, args.train_count, args.heldout_count)

    def run(job: tuple[str, int]) -> dict:
        label, seed = job
        name = f"{label}-seed{seed}"
        command = [sys.executable, "-m", "bench.quality", "--work", str(work_dir / name),
                   "--label", label, "--seed", str(seed),
                   "--train-count", str(args.train_count),
                   "--heldout-count", str(args.heldout_count),
                   *VARIANTS[label], *passthrough]  # fmt: skip
        log_path = work_dir / f"{name}.log"
        with log_path.open("w") as log:
            finished = subprocess.run(
                command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPOSITORY
            )
        if finished.returncode:
            return {
                "label": label,
                "seed": seed,
                "error": f"exit {finished.returncode}, see {log_path}",
            }
        result = last_json_line(finished.stdout)
        with args.results.open("a") as results:
            results.write(json.dumps(result) + "\n")
        return result

    jobs = [(label, seed) for label in args.only or list(VARIANTS) for seed in args.seeds]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(run, jobs))
    print(table(results))
    failed = [result["label"] for result in results if "error" in result]
    if failed:
        print(f"error: variants failed: {', '.join(failed)} (logs in {work_dir})", file=sys.stderr)
        return 1
    return 0


def table(results: list[dict]) -> str:
    """One row per variant (label and post count): mean and spread over its seeds. Approach 3
    depends only on the posts, so a run that predates it takes its seed's from another run."""
    groups: dict[tuple[str, int], list[dict]] = {}
    approach3: dict[tuple[int, int], float] = {}
    for result in results:
        groups.setdefault((result["label"], result.get("train_images", 0)), []).append(result)
        if "approach3_map" in result:
            approach3[(result["config"]["seed"], result["train_images"])] = result["approach3_map"]
    lines = [
        "| variant | posts | seeds | mAP mean ± sd | flip-TTA mAP | micro-F1 | approach 3 "
        "| margin | margin with TTA | epochs | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = list(VARIANTS)
    for (label, posts), runs in sorted(
        groups.items(), key=lambda item: (order.index(item[0][0]) if item[0][0] in order
                                          else len(order), item[0])
    ):  # fmt: skip
        errors = [run["error"] for run in runs if "error" in run]
        if errors:
            lines.append(f"| {label} | {posts} | {'; '.join(errors)} |" + " |" * 8)
            continue

        def mean(values: list) -> str:
            present = [value for value in values if value is not None]
            return f"{statistics.fmean(present):.3f}" if present else "n/a"

        maps = [run["heldout_map"] for run in runs]
        spread = f" ± {statistics.stdev(maps):.3f}" if len(maps) > 1 else ""
        seeds = [run["config"]["seed"] for run in runs]
        baselines = [approach3.get((seed, posts)) for seed in seeds]
        margins = [m - b for m, b in zip(maps, baselines, strict=True) if b is not None]
        margin = f"{statistics.fmean(margins):+.3f}" if margins else "n/a"
        tta_margins = [run["heldout_map_flip_tta"] - base for run, base in
                       zip(runs, baselines, strict=True)
                       if base is not None and "heldout_map_flip_tta" in run]  # fmt: skip
        tta_margin = f"{statistics.fmean(tta_margins):+.3f}" if tta_margins else "n/a"
        epochs = [run.get("epochs_trained", run["config"]["epochs"]) for run in runs]
        lines.append(
            f"| {label} | {posts} | {' '.join(map(str, seeds))} "
            f"| {statistics.fmean(maps):.3f}{spread} "
            f"| {mean([run.get('heldout_map_flip_tta') for run in runs])} "
            f"| {mean([run['heldout_micro_f1'] for run in runs])} | {mean(baselines)} "
            f"| {margin} | {tta_margin} | {mean(epochs)[:-4]} "
            f"| {mean([run['pipeline_seconds'] for run in runs])[:-4]} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
