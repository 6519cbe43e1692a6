"""Why the worst tags are worst: per-tag held-out AP of a bench/quality.py model beside approach 3,
the tag's positives, what its misses were scored as instead, and a sheet of its misses.

For each of the --count tags with the lowest AP it prints: training and held-out positives, the
model's and approach 3's AP, and the true tag most over-represented among its false alarms
(what the model takes for it). The sheet shows, per tag, the positives scored lowest and the
negatives scored highest, each with the model's top tags (green: true, red: false). Scores
use --pred's default test-time augmentation.

    python -m bench.quality --work bench/results/quality        # trains the model
    python -m bench.worst_tags --work bench/results/quality --sheet bench/measured/worst.png
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.model.metrics import average_precision
from alti2v.tag.select import ranked
from alti2v.tag.sheet import SheetCell, SheetLine, render_sheet
from bench.common import DEFAULT_WEIGHTS, markdown_header, write_measured
from bench.quality import approach3_scores, labelled_posts, posts_of

EXAMPLES = 2  # missed positives and false alarms shown per tag
SHEET_LINES = 5  # tags listed under each image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="a bench/quality.py --work")
    parser.add_argument("--count", type=int, default=5, help="worst tags reported")
    parser.add_argument("--sheet", type=Path, required=True, help="PNG of their misses")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="VGG16 weights (approach 3)")
    args = parser.parse_args(argv)
    from alti2v.model.saved import find_model, load_model
    from alti2v.tag.inputs import InputImage
    from alti2v.tag.predict import predict_images

    cache = posts_of(args.work)
    loaded = replace(load_model(find_model(None, args.work / "models")), tta=defaults.TTA)
    tags = loaded.tags
    paths, targets = labelled_posts(cache / "heldout", tags)
    _, train_targets = labelled_posts(cache / "train", tags)
    images = [InputImage(Path(path), Path(path).parent) for path in paths]
    scores = np.stack([prediction.probabilities for prediction in predict_images(loaded, images)])
    baseline = approach3_scores(cache, tags, args.weights)

    present = [tag for tag in range(len(tags)) if targets[:, tag].any()]
    model_ap = {tag: average_precision(scores[:, tag], targets[:, tag]) for tag in present}
    worst = sorted(present, key=model_ap.get)[: args.count]
    lines = [
        markdown_header("The worst tags of a bench/quality.py model"),
        "| tag | train positives | held-out positives | AP | approach 3 AP "
        "| its false alarms are often |",
        "|---|---|---|---|---|---|",
    ]
    cells = []
    for tag in worst:
        positives = np.flatnonzero(targets[:, tag])
        # The positives scored lowest and the negatives scored highest.
        missed = ranked(-scores[:, tag], EXAMPLES, mask=targets[:, tag] == 1)
        alarms = ranked(scores[:, tag], EXAMPLES, mask=targets[:, tag] == 0)
        look_alike = confused_with(tag, scores, targets, tags)
        lines.append(
            f"| {tags[tag]} | {int(train_targets[:, tag].sum())} | {len(positives)} "
            f"| {model_ap[tag]:.2f} | {average_precision(baseline[:, tag], targets[:, tag]):.2f} "
            f"| {look_alike or '-'} |"
        )
        for post, kind in [*((p, "missed") for p in missed), *((p, "false alarm") for p in alarms)]:
            title = f"{tags[tag]}: {kind}, p={scores[post, tag]:.2f}"
            cells.append(
                SheetCell(Path(paths[post]), title, top_lines(scores[post], targets[post], tags))
            )
    render_sheet(cells, args.sheet, columns=2 * EXAMPLES, thumb=200)
    lines.append(f"\nSheet of their misses: `{args.sheet}`")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    print(f"raw output: {write_measured(text, 'worst-tags')}", file=sys.stderr)
    return 0


def confused_with(tag: int, scores: np.ndarray, targets: np.ndarray, tags: list[str]) -> str:
    """The true tag most over-represented among `tag`'s top false alarms (as many as it has
    positives), with its lift over all negatives: what the model mistakes for `tag`."""
    negatives = np.flatnonzero(targets[:, tag] == 0)
    count = max(int(targets[:, tag].sum()), EXAMPLES)
    alarms = ranked(scores[:, tag], count, mask=targets[:, tag] == 0)
    base = targets[negatives].mean(axis=0)
    share = targets[alarms].mean(axis=0)
    lift = np.where(
        (base > 0) & (targets[alarms].sum(axis=0) >= 2), share / np.maximum(base, 1e-9), 0
    )
    lift[tag] = 0
    best = int(np.argmax(lift))
    if lift[best] <= 1:
        return "-"
    return f"{tags[best]} ({share[best]:.0%} of them, {base[best]:.0%} of negatives)"


def top_lines(scores: np.ndarray, truth: np.ndarray, tags: list[str]) -> list[SheetLine]:
    return [
        SheetLine(tags[tag], float(scores[tag]), bool(truth[tag]))
        for tag in ranked(scores, SHEET_LINES)
    ]


if __name__ == "__main__":
    sys.exit(main())
