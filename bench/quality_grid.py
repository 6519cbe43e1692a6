"""Run bench/quality.py for each training choice the README reports, and tabulate the results.

Each variant changes one or two settings from the defaults; the table is how the defaults were
chosen. On 2 CPU cores each variant takes about 8 minutes; on a GPU use --parallel.

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
from bench.quality import HELDOUT_SEED_OFFSET

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("bench/results/grid"), help="scratch")
    parser.add_argument("--parallel", type=int, default=1, help="variants run at once")
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="default: all")
    parser.add_argument("--seed", type=int, default=7, help="synthetic data seed")
    args, passthrough = parser.parse_known_args()
    # Generate the shared image cache once, before variants read it side by side.
    cache = args.work / f"quality-images-seed{args.seed}"
    synthetic.generate(cache / "train", 600, seed=args.seed)
    synthetic.generate(cache / "heldout", 200, seed=args.seed + HELDOUT_SEED_OFFSET)

    def run(label: str) -> dict:
        work = str(args.work / label)
        command = [sys.executable, "-m", "bench.quality", "--work", work, "--label", label,
                   "--seed", str(args.seed), *VARIANTS[label], *passthrough]  # fmt: skip
        log = (args.work / f"{label}.log").open("w")
        finished = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True)
        if finished.returncode:
            return {"label": label, "error": f"exit {finished.returncode}, see {log.name}"}
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
