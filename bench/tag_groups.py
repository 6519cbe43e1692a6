"""Which kinds of tag the model misses: held-out AP per tag group (alti2v.evaluate.groups) of
finished bench/quality.py runs, against approach 3 and a colour-histogram baseline on the same
posts.

The histogram baseline is a logistic regression per tag (alti2v.model.linear, as approach 3) on
a 12 x 4 x 4 hue, saturation, value histogram of the 150x150 image --build makes: it sees colour
and nothing else, so where the network scores below it on a colour tag, the network is failing
at something a colour count gets. Its scores are kept beside the data seed's images, as
approach 3's are. Each group's AP is the mean over its tags with a held-out positive, per run;
the table gives the mean over the runs.

    python -m bench.tag_groups bench/results/grid/float32-seed*   # bench.quality --work folders
    python -m bench.tag_groups RUN... --tags                      # and every tag's row
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from PIL import Image

from alti2v import defaults
from alti2v.data.images import load_image
from alti2v.data.layout import DataDir, ModelFiles
from alti2v.data.vocabulary import load_vocabulary
from alti2v.evaluate.groups import GROUPS, tag_group
from alti2v.model.metrics import per_tag_average_precision
from alti2v.model.saved import find_model
from bench.common import DEFAULT_WEIGHTS, markdown_header, write_measured
from bench.quality import (
    HELDOUT_SCORES,
    approach3_scores,
    fitted_baseline,
    labelled_posts,
    posts_of,
)

HISTOGRAM_BINS = (12, 4, 4)  # hue, saturation, value
SCORERS = ("model", "approach3", "histogram")


def colour_histogram(path: Path) -> np.ndarray:
    """The share of the image's pixels in each hue, saturation, value bin."""
    pixels = load_image(path, defaults.IMAGE_SIZE, defaults.RESIZE)
    hsv = np.asarray(Image.fromarray(pixels).convert("HSV"), dtype=np.int64).reshape(-1, 3)
    bins = np.array(HISTOGRAM_BINS)
    cells = hsv * bins // 256
    index = (cells[:, 0] * bins[1] + cells[:, 1]) * bins[2] + cells[:, 2]
    return np.bincount(index, minlength=int(bins.prod())) / len(index)


def histogram_scores(cache: Path, tags: list[str]) -> np.ndarray:
    """(held-out posts, tags) scores of the histogram baseline fitted on every training post."""

    def features(paths: list[str]) -> np.ndarray:
        return np.stack([colour_histogram(Path(path)) for path in paths])

    return fitted_baseline(cache, tags, "histogram", features)


def run_tags(work: Path, weights: str) -> list[dict]:
    """One row per tag of a finished bench.quality run: its group, support and each AP."""
    files = ModelFiles(find_model(None, DataDir(work).models))
    tags = load_vocabulary(files.vocab)
    categories = json.loads(files.info.read_text()).get("categories", {})
    cache = posts_of(work)
    _, targets = labelled_posts(cache / "heldout", tags)
    scores = {
        "model": np.load(work / HELDOUT_SCORES),
        "approach3": approach3_scores(cache, tags, weights),
        "histogram": histogram_scores(cache, tags),
    }
    ap = {name: per_tag_average_precision(value, targets) for name, value in scores.items()}
    return [
        {
            "tag": tag,
            "group": tag_group(tag, categories.get(tag, "general")),
            "support": int(targets[:, index].sum()),
            **{name: float(ap[name][index]) for name in SCORERS},
        }
        for index, tag in enumerate(tags)
    ]


def group_means(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per group present: its tag count and each scorer's mean AP over tags with positives."""
    means = {}
    for group in GROUPS:
        members = [row for row in rows if row["group"] == group and row["support"]]
        if members:
            means[group] = {"tags": len(members)} | {
                name: statistics.fmean(row[name] for row in members) for name in SCORERS
            }
    return means


def table(runs: dict[str, list[dict]]) -> str:
    per_run = {name: group_means(rows) for name, rows in runs.items()}
    lines = [
        f"Mean AP over the tags of each group with a held-out positive; mean (min-max) over "
        f"{len(runs)} runs: {', '.join(runs)}.\n",
        "| group | tags | model | approach 3 | histogram | model - histogram |",
        "|---|---|---|---|---|---|",
    ]
    for group in GROUPS:
        present = [means[group] for means in per_run.values() if group in means]
        if not present:
            continue

        def cell(name: str, present: list[dict] = present) -> str:
            values = [means[name] for means in present]
            return f"{statistics.fmean(values):.3f} ({min(values):.3f}-{max(values):.3f})"

        margin = statistics.fmean(means["model"] - means["histogram"] for means in present)
        lines.append(
            f"| {group} | {present[0]['tags']} | {cell('model')} | {cell('approach3')} "
            f"| {cell('histogram')} | {margin:+.3f} |"
        )
    return "\n".join(lines) + "\n"


def tag_table(runs: dict[str, list[dict]]) -> str:
    """Every tag: its group, mean support and mean AP of each scorer over the runs."""
    rows_by_tag: dict[str, list[dict]] = {}
    for rows in runs.values():
        for row in rows:
            if row["support"]:
                rows_by_tag.setdefault(row["tag"], []).append(row)
    lines = [
        "| tag | group | support | model | approach 3 | histogram |",
        "|---|---|---|---|---|---|",
    ]
    ordered = sorted(rows_by_tag.items(), key=lambda item: statistics.fmean(
        row["model"] for row in item[1]))  # fmt: skip
    for tag, rows in ordered:
        mean = {name: statistics.fmean(row[name] for row in rows) for name in SCORERS}
        lines.append(
            f"| {tag} | {rows[0]['group']} | {statistics.fmean(row['support'] for row in rows):.0f}"
            f" | {mean['model']:.3f} | {mean['approach3']:.3f} | {mean['histogram']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="bench.quality --work folders")
    parser.add_argument("--tags", action="store_true", help="also every tag's row")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="approach 3's VGG16 weights")
    parser.add_argument("--name", default="tag-groups", help="bench/measured/ file name")
    args = parser.parse_args(argv)
    runs = {work.name: run_tags(work, args.weights) for work in args.runs}
    text = (
        markdown_header("Held-out AP per tag group: the model, approach 3, a colour histogram")
        + table(runs)
        + (f"\n{tag_table(runs)}" if args.tags else "")
        + "\n```\n"
        + "\n".join(json.dumps({"run": name, "tags": rows}) for name, rows in runs.items())
        + "\n```\n"
    )
    print(text)
    write_measured(text, args.name)


if __name__ == "__main__":
    main()
