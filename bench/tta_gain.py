"""What flip test-time augmentation gains, from the quality benchmark's raw lines.

Reads the JSON lines `bench.quality` wrote (`heldout_map` without and `heldout_map_flip_tta`
with `--tta flip`) and prints, over every run that measured both: the count, the smallest,
median and mean gain, and the share of runs below a few gains; then the same for the runs of
today's defaults (`bench.quality_grid`'s `zero-prior` variant). Reads files only; trains nothing.

    python -m bench.tta_gain                                  # the recipe search's files
    python -m bench.tta_gain --out bench/measured/tta-gain-20261202.md
    python -m bench.tta_gain bench/measured/quality-prototypes-*.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from bench.common import MEASURED, markdown_header

# The recipe search's raw lines. The prototype files are left out by default: their runs used
# patched code that their `config` does not show (bench/measured/README.md).
DEFAULT_FILES = sorted(MEASURED.glob("quality-recipe-*.jsonl"))
DEFAULTS_VARIANT = "zero-prior"  # bench/quality_grid.py: today's defaults, 600 posts, 5 epochs
THRESHOLDS = (0.004, 0.008, 0.010)


def runs_of(files: list[Path]) -> list[dict]:
    """Every run of `files` that measured mAP both without and with flip TTA."""
    runs = []
    for path in files:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            run = json.loads(line)
            if run.get("heldout_map_flip_tta") is None:
                continue
            run["gain"] = run["heldout_map_flip_tta"] - run["heldout_map"]
            run["file"] = path.name
            runs.append(run)
    return runs


def describe(gains: list[float]) -> str:
    lines = [
        f"- runs: {len(gains)}",
        f"- gain min {min(gains):+.4f}, median {statistics.median(gains):+.4f}, "
        f"mean {statistics.mean(gains):+.4f}, max {max(gains):+.4f}",
    ]
    for threshold in THRESHOLDS:
        below = sum(gain < threshold for gain in gains)
        share = below / len(gains)
        lines.append(f"- below {threshold:+.3f}: {below} of {len(gains)} ({share:.0%})")
    return "\n".join(lines) + "\n"


def report(files: list[Path]) -> str:
    runs = runs_of(files)
    text = markdown_header("Flip test-time augmentation: held-out mAP gain per run")
    text += "Files: " + ", ".join(f"`{path.name}`" for path in files) + "\n\n"
    text += "## Every run\n\n" + describe([run["gain"] for run in runs]) + "\n"
    defaults = [run for run in runs if run["label"] == DEFAULTS_VARIANT]
    if defaults:
        text += f"## Today's defaults (variant `{DEFAULTS_VARIANT}`)\n\n"
        text += describe([run["gain"] for run in defaults])
        text += "".join(
            f"- seed {run['config']['seed']}: {run['heldout_map']:.4f} -> "
            f"{run['heldout_map_flip_tta']:.4f} ({run['gain']:+.4f})\n"
            for run in defaults
        )
        text += "\n"
    text += "## Each run, smallest gain first\n\n"
    text += "| file | variant | seed | mAP | with TTA | gain |\n|---|---|---|---|---|---|\n"
    for run in sorted(runs, key=lambda run: run["gain"]):
        text += (
            f"| {run['file']} | {run['label']} | {run['config']['seed']} "
            f"| {run['heldout_map']:.4f} | {run['heldout_map_flip_tta']:.4f} "
            f"| {run['gain']:+.4f} |\n"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "files", nargs="*", type=Path, help="JSON-lines files (default: quality-recipe-*.jsonl)"
    )
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    text = report(args.files or DEFAULT_FILES)
    print(text, end="")
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
