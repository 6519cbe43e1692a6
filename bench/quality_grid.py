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

from alti2v import synthetic
from bench.quality import HELDOUT_COUNT, HELDOUT_SEED_OFFSET, TRAIN_COUNT

REPO = Path(__file__).resolve().parents[1]

# The recipe before this search: bench/quality.py's flags that restore it whatever the defaults.
SEED_RECIPE = ["--augment", "none", "--dropout", "0", "--weight-decay", "0",
               "--backbone-lr-scale", "1", "--loss", "bce", "--label-smoothing", "0",
               "--learning-rate", "1e-4"]  # fmt: skip

VARIANTS = {
    "defaults": [],
    "seed-recipe": SEED_RECIPE,
    "raw": ["--preprocess", "raw"],
    "nearest": ["--resize", "nearest"],
    "lr1e-3": [*SEED_RECIPE, "--learning-rate", "1e-3"],
    "no-warmup": ["--warmup-epochs", "0"],
    "cosine": ["--schedule", "cosine"],
    "flip": [*SEED_RECIPE, "--augment", "flip"],
    "flip-crop": [*SEED_RECIPE, "--augment", "flip,crop"],
    "flip-crop-light": [*SEED_RECIPE, "--augment", "flip,crop,light"],
    "dropout0.3": [*SEED_RECIPE, "--dropout", "0.3"],
    "head-lr1e-3-bb0.1": [*SEED_RECIPE, "--learning-rate", "1e-3", "--backbone-lr-scale", "0.1"],
    "head-lr3e-4-bb0.33": [*SEED_RECIPE, "--learning-rate", "3e-4",
                           "--backbone-lr-scale", "0.33"],
    "asl": [*SEED_RECIPE, "--loss", "asl"],
    "smooth0.1": [*SEED_RECIPE, "--label-smoothing", "0.1"],
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
        results = [json.loads(line) for path in args.table for line in path.open() if line.strip()]
        print(table(results))
        return 0
    work_dir = args.work.resolve()  # the variants run from the repository root
    for seed in args.seeds:  # the image caches, made once before the runs read them side by side
        cache = work_dir / f"quality-images-seed{seed}"
        synthetic.generate(cache / "train", args.train_count, seed=seed)
        synthetic.generate(cache / "heldout", args.heldout_count, seed=seed + HELDOUT_SEED_OFFSET)

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
                command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO
            )
        if finished.returncode:
            return {
                "label": label,
                "seed": seed,
                "error": f"exit {finished.returncode}, see {log_path}",
            }
        result = json.loads(finished.stdout.strip().splitlines()[-1])
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
    """One row per variant (label and post count): mean and spread over its seeds."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for result in results:
        groups.setdefault((result["label"], result.get("train_images", 0)), []).append(result)
    lines = [
        "| variant | posts | seeds | mAP mean ± sd | flip-TTA mAP | micro-F1 | approach 3 "
        "| margin | epochs | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (label, posts), runs in groups.items():
        errors = [run["error"] for run in runs if "error" in run]
        if errors:
            lines.append(f"| {label} | {posts} | {'; '.join(errors)} |" + " |" * 7)
            continue

        def mean(key: str, runs: list[dict] = runs) -> float:
            return statistics.fmean(run[key] for run in runs)

        maps = [run["heldout_map"] for run in runs]
        spread = f" ± {statistics.stdev(maps):.3f}" if len(maps) > 1 else ""
        seeds = " ".join(str(run["config"]["seed"]) for run in runs)
        lines.append(
            f"| {label} | {posts} | {seeds} | {statistics.fmean(maps):.3f}{spread} "
            f"| {mean('heldout_map_flip_tta'):.3f} | {mean('heldout_micro_f1'):.3f} "
            f"| {mean('approach3_map'):.3f} "
            f"| {statistics.fmean(maps) - mean('approach3_map'):+.3f} "
            f"| {mean('epochs_trained'):.0f} | {mean('pipeline_seconds'):.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
