"""Run bench/quality.py for each training choice the README reports, and tabulate the results.

Each variant changes one or two settings from the defaults; the table is how the defaults were
chosen. On 2 CPU cores each variant takes about 4 minutes; on a GPU use --parallel. Flags it
does not know are passed on to every bench/quality.py run. A variant that fails is a row naming
its log, and the grid exits with status 1 (0 when every variant ran).

    python -m bench.quality_grid                     # every variant, one at a time
    python -m bench.quality_grid --parallel 9 --only default raw
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alti2v import synthetic
from bench.quality import HELDOUT_COUNT, HELDOUT_SEED_OFFSET, TRAIN_COUNT

REPO = Path(__file__).resolve().parents[1]

VARIANTS = {
    "default": [],
    "raw": ["--preprocess", "raw"],
    "nearest": ["--resize", "nearest"],
    "original": ["--preprocess", "raw", "--resize", "nearest", "--learning-rate", "1e-3",
                 "--warmup-epochs", "0"],
    "lr1e-3": ["--learning-rate", "1e-3"],
    "lr3e-4-cosine": ["--learning-rate", "3e-4", "--schedule", "cosine"],
    "lr3e-5": ["--learning-rate", "3e-5"],
    "no-warmup": ["--warmup-epochs", "0"],
    "cosine": ["--schedule", "cosine"],
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("bench/results/grid"), help="scratch")
    parser.add_argument("--parallel", type=int, default=1, help="variants run at once")
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="default: all")
    parser.add_argument("--seed", type=int, default=7, help="synthetic data seed")
    parser.add_argument("--train-count", type=int, default=TRAIN_COUNT, help="training posts")
    parser.add_argument("--heldout-count", type=int, default=HELDOUT_COUNT, help="held-out posts")
    args, passthrough = parser.parse_known_args(argv)
    work_dir = args.work.resolve()  # the variants run from the repository root
    # Generate the shared image cache once, before variants read it side by side.
    cache = work_dir / f"quality-images-seed{args.seed}"
    synthetic.generate(cache / "train", args.train_count, seed=args.seed)
    synthetic.generate(cache / "heldout", args.heldout_count, seed=args.seed + HELDOUT_SEED_OFFSET)

    def run(label: str) -> dict:
        command = [sys.executable, "-m", "bench.quality", "--work", str(work_dir / label),
                   "--label", label, "--seed", str(args.seed),
                   "--train-count", str(args.train_count),
                   "--heldout-count", str(args.heldout_count),
                   *VARIANTS[label], *passthrough]  # fmt: skip
        log_path = work_dir / f"{label}.log"
        with log_path.open("w") as log:
            finished = subprocess.run(
                command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO
            )
        if finished.returncode:
            return {"label": label, "error": f"exit {finished.returncode}, see {log_path}"}
        return json.loads(finished.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(run, args.only or list(VARIANTS)))
    print("| variant | held-out mAP | micro-F1 | prior mAP | seconds |")
    print("|---|---|---|---|---|")
    for result in results:
        print(json.dumps(result), file=sys.stderr)
        if "error" in result:
            print(f"| {result['label']} | {result['error']} | | | |")
        else:
            print(
                f"| {result['label']} | {result['heldout_map']:.3f} | "
                f"{result['heldout_micro_f1']:.3f} | {result['prior_map']:.3f} | "
                f"{result['pipeline_seconds']:.0f} |"
            )
    failed = [result["label"] for result in results if "error" in result]
    if failed:
        print(f"error: variants failed: {', '.join(failed)} (logs in {work_dir})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
