"""AP per tag group per epoch: bench.quality's pipeline trained one epoch at a time, its held-out
posts scored after each epoch, beside approach 3 and the colour histogram (bench.tag_groups).

It runs `alt_i2v.py --maeshori --build --train` as bench.quality does, with --epochs 1, then the
same command with --epochs 2, 3, ... N: --train resumes from its checkpoint when --epochs grows.
After each epoch the newest model scores the held-out posts through --pred's code
(predict_images, no test-time augmentation) and bench.tag_groups takes each tag's AP and each
group's mean from them. Stdout gets a Markdown table (epoch rows, group columns; then the colour
tags' own), kept in bench/measured/ with a JSON line per epoch (per-tag AP, train loss), and a PNG
beside it: each group's AP against the epoch, approach 3's and the histogram's as dashed lines.

The resumed epochs are the trajectory of one N-epoch run. A checkpoint restores the optimizer
with the learning-rate schedule it was planned with, for 1 epoch, 2, ...; with the default
constant schedule that plan does not matter: after the warm-up the rate is the peak exactly
((1 - alpha) * cosine + alpha with alpha 1, alti2v/model/optimizer.py), the warm-up and
--head-epochs count steps, not epochs, and the order of each epoch, the augmentation and the
dropout draws come from (seed, epoch) and the saved seed states. tests/test_train_resume.py
asserts it (to 1e-5): --epochs 1 then 2 ends with the weights and Adam state of --epochs 2.
What would differ is refused: --schedule cosine (planned over the first run's one epoch, its
rate is 0 from then on), --patience (the curve would stop where the run stops) and --fresh
(each epoch would start over). A run is not reproducible to the bit anyway: two --quick runs
from scratch on the same 2-core CPU differed from the 5th digit of epoch 1's train loss
(0.43649 and 0.43648) and by 0.003 in held-out mAP after epoch 2, so the curve is one run's up
to that noise, on a GPU too.

Every flag but --quick and --name is bench.quality's (--work, --train-count, --seed, ...) or the
CLI's, as bench.quality takes them (--epochs is N). Each epoch's export replaces the last, so
--work ends as a finished bench.quality run of N epochs (models/, heldout-scores.npy) that
bench.tag_groups and bench.miss_sheet read.

    python -m bench.tag_curves --epochs 10                       # 600 + 200 posts, 10 epochs
    python -m bench.tag_curves --epochs 10 --learning-rate 3e-4
    python -m bench.tag_curves --quick                           # a smoke run
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from alti2v.data.files import atomic_write_bytes
from alti2v.data.layout import DataDir
from alti2v.evaluate.groups import GROUPS
from bench.common import markdown_header, run_cli, training_history, write_measured
from bench.quality import HELDOUT_SCORES, image_cache, labelled_posts
from bench.quality import parse_args as quality_parse_args
from bench.tag_groups import SCORERS, group_means, run_tags

WORK = Path("bench/results/tag-curves")  # --work unless given
# --quick: a run small enough to check that the benchmark works (flags given later win).
QUICK = ("--train-count", "64", "--heldout-count", "32", "--epochs", "2")
COLOUR_GROUPS = ("hair colour", "eye colour")  # whose tags get a table of their own (issue 23)
BASELINES = tuple(name for name in SCORERS if name != "model")
BASELINE_NAMES = {"approach3": "approach 3", "histogram": "histogram"}
PLOT_COLUMNS = 4  # groups per row of the plot


def parse_args(argv: list[str] | None = None):
    """(this benchmark's arguments, bench.quality's, the CLI's parsed ones, the CLI's argv)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Every other flag is bench.quality's or alt_i2v.py's, as `python -m bench.quality "
        f"--help` lists them; --work is {WORK} unless given.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,  # a prefix of another flag must reach bench.quality and the CLI
    )
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {' '.join(QUICK)}")
    parser.add_argument("--name", default="tag-curves", help="bench/measured/ file name")
    own, rest = parser.parse_known_args(argv)
    quality, cli, cli_argv = quality_parse_args(
        [*(QUICK if own.quick else ()), "--work", str(WORK), *rest]
    )
    refused = {
        "--schedule cosine": cli.schedule == "cosine",
        f"--patience {cli.patience}": cli.patience > 0,
        "--fresh": cli.fresh,
    }
    named = [flag for flag, given in refused.items() if given]
    if named:
        parser.error(f"{', '.join(named)}: the resumed epochs would not be one run's (see --help)")
    return own, quality, cli, cli_argv


def epoch_result(data: DataDir, cache: Path, weights: str) -> tuple[dict, list[dict]]:
    """The newest model's held-out scores, kept as heldout-scores.npy; (the epoch's result, the
    per-tag rows of bench.tag_groups)."""
    from alti2v.model.saved import find_model, load_model
    from alti2v.tag.inputs import InputImage
    from alti2v.tag.predict import predict_images

    loaded = replace(load_model(find_model(None, data.models)), tta="none")
    paths, _ = labelled_posts(cache / "heldout", loaded.tags)
    images = [InputImage(Path(path), Path(path).parent) for path in paths]
    scores = np.stack([prediction.probabilities for prediction in predict_images(loaded, images)])
    buffer = io.BytesIO()
    np.save(buffer, scores)
    atomic_write_bytes(data.root / HELDOUT_SCORES, buffer.getvalue())
    rows = run_tags(data.root, weights)
    present = [row for row in rows if row["support"]]
    history = training_history(data)
    result = {
        "epoch": len(history),
        "train_loss": history[-1]["train_loss"],
        "heldout_map": statistics.fmean(row["model"] for row in present),
        "groups": {group: means["model"] for group, means in group_means(rows).items()},
        "tags": {row["tag"]: row["model"] for row in present},
    }
    return result, rows


def drop_older_models(data: DataDir) -> None:
    """Keep the newest export only: one per epoch would hold N copies of the weights."""
    folders = sorted(path for path in data.models.iterdir() if path.is_dir())
    for folder in folders[:-1]:
        shutil.rmtree(folder)


def markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|---" * len(header) + "|",
        *("| " + " | ".join(cells) + " |" for cells in body),
    ]


def tables(epochs: list[dict], rows: list[dict]) -> str:
    """The group table and the colour tags' table: epoch rows, then the baselines' rows."""
    means = group_means(rows)
    groups = [group for group in GROUPS if group in means]
    colour_tags = sorted(
        (row for row in rows if row["group"] in COLOUR_GROUPS and row["support"]),
        key=lambda row: COLOUR_GROUPS.index(row["group"]),
    )  # hair colours, then eye colours, each most frequent first (the vocabulary's order)
    group_table = markdown_table(
        ["epoch", "train loss", "mAP", *(f"{group} ({means[group]['tags']})" for group in groups)],
        [
            [str(epoch["epoch"]), f"{epoch['train_loss']:.4f}", f"{epoch['heldout_map']:.3f}",
             *(f"{epoch['groups'][group]:.3f}" for group in groups)]
            for epoch in epochs
        ]
        + [
            [BASELINE_NAMES[name], "", "", *(f"{means[group][name]:.3f}" for group in groups)]
            for name in BASELINES
        ],
    )  # fmt: skip
    colour_table = markdown_table(
        ["epoch", *(f"{row['tag']} ({row['support']})" for row in colour_tags)],
        [
            [str(epoch["epoch"]), *(f"{epoch['tags'][row['tag']]:.3f}" for row in colour_tags)]
            for epoch in epochs
        ]
        + [
            [BASELINE_NAMES[name], *(f"{row[name]:.3f}" for row in colour_tags)]
            for name in BASELINES
        ],
    )
    return (
        "\n".join(
            [
                "Mean held-out AP over the tags of each group with a held-out positive (tags per "
                "group in brackets): the model after each epoch, then the baselines, which do not "
                "train.\n",
                *group_table,
                "\nThe colour tags' AP (held-out positives in brackets).\n",
                *colour_table,
            ]
        )
        + "\n"
    )


def plot(epochs: list[dict], rows: list[dict]) -> bytes:
    """A PNG: one panel per group, the model's AP by epoch and the baselines' as dashed lines."""
    means = group_means(rows)
    groups = [group for group in GROUPS if group in means]
    columns = min(PLOT_COLUMNS, len(groups))
    panel_rows = math.ceil(len(groups) / columns)
    figure = Figure(figsize=(3.2 * columns, 2.6 * panel_rows), dpi=100)
    axes = figure.subplots(panel_rows, columns, squeeze=False, sharex=True, sharey=True)
    numbers = [epoch["epoch"] for epoch in epochs]
    for axis, group in zip(axes.flat, groups, strict=False):
        axis.plot(numbers, [epoch["groups"][group] for epoch in epochs], "o-", label="model")
        for name, colour in zip(BASELINES, ("tab:orange", "tab:green"), strict=True):
            axis.axhline(means[group][name], color=colour, linestyle="--",
                         label=BASELINE_NAMES[name])  # fmt: skip
        axis.set_title(f"{group} ({means[group]['tags']} tags)", fontsize=9)
        axis.set_ylim(0, 1)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(groups) :]:
        axis.set_visible(False)
    for axis in axes[-1]:
        axis.set_xlabel("epoch")
    for axis in axes[:, 0]:
        axis.set_ylabel("held-out AP")
    axes.flat[0].legend(fontsize=8, loc="lower right")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    own, quality, cli, cli_argv = parse_args(argv)
    cache = image_cache(
        quality.work.parent, quality.seed, quality.train_count, quality.heldout_count
    )
    shutil.rmtree(quality.work, ignore_errors=True)
    data = DataDir(quality.work)
    quality.work.mkdir(parents=True)
    data.imgs.symlink_to((cache / "train").resolve())
    epochs = []
    for epoch in range(1, cli.epochs + 1):
        run_cli(*cli_argv, "--epochs", str(epoch))  # the last --epochs wins
        result, rows = epoch_result(data, cache, cli.weights)
        drop_older_models(data)
        epochs.append(result)
        print(
            f"tag_curves: epoch {epoch}/{cli.epochs}: train loss {result['train_loss']:.4f}, "
            f"held-out mAP {result['heldout_map']:.3f}",
            file=sys.stderr,
        )
    baselines = {
        row["tag"]: {name: row[name] for name in ("support", *BASELINES)}
        for row in rows
        if row["support"]
    }
    text = (
        markdown_header("Held-out AP per tag group per epoch: the model, approach 3, a histogram")
        + tables(epochs, rows)
        + "\nThe plot: the PNG of this file's name, beside it.\n\n```\n"
        + "".join(json.dumps(epoch) + "\n" for epoch in epochs)
        + json.dumps({"baselines": baselines})
        + "\n```\n"
    )
    measured = write_measured(text, own.name)
    picture = measured.with_suffix(".png")
    atomic_write_bytes(picture, plot(epochs, rows))
    print(text)
    print(f"raw output: {measured}; plot: {picture}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
