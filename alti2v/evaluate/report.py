"""The pictures and the one-page `report.html` of `--eval`, and `comparison.md` of several models.

Plots are drawn with matplotlib's Agg backend (no display) into PNGs beside the report; the page
embeds them, and thumbnails of the gallery, as base64 data URIs, so it is a single file to open
or send. Its per-tag table sorts by any column with a click (a few lines of inline script).
`comparison_rows` lays out the side-by-side table that comparison.md holds and the command line
prints.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.metrics import precision_recall_curve

from alti2v.data.files import atomic_write_bytes, atomic_write_text
from alti2v.data.layout import ComparisonFiles, EvalFiles
from alti2v.data.records import unpack_record
from alti2v.evaluate.names import take
from alti2v.tag.select import ranked
from alti2v.tag.thresholds import mcut_mask

PR_TAGS = 8  # precision-recall curves of this many most frequent tags
THUMBNAIL_SIDE = 150  # pixels
SCORER_NAMES = {
    "model": "model",
    "frequency_prior": "frequency prior",
    "approach3": "approach 3 (logistic regression on VGG16 features)",
}
SHORT_NAMES = {"model": "model", "frequency_prior": "frequency prior", "approach3": "approach 3"}
PLOT_STYLE = {"figure.dpi": 100, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}


def write_report(files: EvalFiles, history: Path | None, summary, judgements, scored, tags,
                 train_counts, options, db=None) -> None:  # fmt: skip
    """`history`: the training curves' history.csv (None for a model not trained here);
    `db`: the open dataset the scored posts came from (their gallery thumbnails), if any."""
    pictures = {}
    with plt.rc_context(PLOT_STYLE):
        pictures["precision-recall curves"] = _save(files, "pr_curves", _pr_curves(scored, tags))
        pictures["reliability"] = _save(files, "reliability", _reliability(summary))
        pictures["AP against tag frequency"] = _save(
            files, "ap_vs_frequency", _ap_vs_frequency(judgements, scored, train_counts)
        )
        if history is not None and history.is_file():
            pictures["training curves"] = _save(files, "training", _training_curves(history))
    gallery = _gallery(db, scored, judgements["model"], tags, options.gallery)
    page = _page(summary, judgements, tags, files, pictures, gallery)
    atomic_write_text(files.report, page)


def _save(files: EvalFiles, name: str, figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(files.picture(name), buffer.getvalue())
    return buffer.getvalue()


def _pr_curves(scored, tags):
    targets = scored.targets
    support = np.asarray(targets.sum(axis=0)).ravel()
    # The most frequent tags that also have a negative: a curve needs both.
    candidates = [
        tag for tag in np.argsort(-support, kind="stable") if 0 < support[tag] < len(targets)
    ]
    chosen = candidates[:PR_TAGS]
    columns = 4
    rows = max(1, math.ceil(len(chosen) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(12, 3 * rows), squeeze=False)
    for axis in axes.ravel()[len(chosen) :]:
        axis.set_visible(False)
    for axis, tag in zip(axes.ravel(), chosen, strict=False):
        actual = np.asarray(targets[:, tag])
        # The baselines' columns are the dataset's tags: the model's tag there, if it has one.
        baseline = -1 if scored.baseline_columns is None else scored.baseline_columns[tag]
        for name, style, column in (("model", "-", tag), ("approach3", "--", baseline)):
            if name in scored.scores and column >= 0:
                precision, recall, _ = precision_recall_curve(
                    actual, np.asarray(scored.scores[name][:, column], dtype=np.float32)
                )
                axis.step(recall, precision, style, where="post", label=SHORT_NAMES[name])
        axis.axhline(actual.mean(), color="grey", linestyle=":", label="frequency prior")
        axis.set(title=f"{tags[tag]} ({int(support[tag])})", xlim=(0, 1), ylim=(0, 1.02),
                 xlabel="recall", ylabel="precision")  # fmt: skip
    axes[0, 0].legend(loc="lower left", fontsize=8)
    figure.suptitle("Precision-recall of the most frequent tags (positives in brackets)")
    figure.tight_layout()
    return figure


def _reliability(summary):
    curve = summary["model"]["calibration"]["reliability"]
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    points = [
        (c, f)
        for c, f in zip(curve["confidence"], curve["frequency"], strict=True)
        if c is not None
    ]
    top.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    if points:
        top.plot(*zip(*points, strict=True), "o-", label="model")
    top.set(ylabel="share of positives", xlim=(0, 1), ylim=(0, 1),
            title=f"Reliability over all posts (ECE {curve['ece']:.4f})")  # fmt: skip
    top.legend(loc="upper left")
    edges = np.linspace(0, 1, len(curve["count"]) + 1)
    bottom.bar(edges[:-1], curve["count"], width=np.diff(edges), align="edge", edgecolor="white")
    bottom.set(yscale="log", xlabel="predicted probability", ylabel="(image, tag) pairs")
    bottom.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # 2x10^3 ... clutter
    figure.tight_layout()
    return figure


def _ap_vs_frequency(judgements, scored, train_counts):
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, marker in (("model", "o"), ("approach3", "x")):
        if name in judgements:
            average_precision = judgements[name].average_precision
            if name != "model":
                average_precision = take(average_precision, scored.baseline_columns)
            axis.scatter(
                np.maximum(train_counts, 0.8), average_precision,
                marker=marker, s=18, alpha=0.7, label=SHORT_NAMES[name],
            )  # fmt: skip
    axis.set(xscale="log", ylim=(0, 1.02), xlabel="training posts with the tag",
             ylabel="AP on the eval posts", title="AP against tag frequency")  # fmt: skip
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure


def _training_curves(history: Path):
    with history.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = [int(row["epoch"]) for row in rows]

    def column(name: str) -> list[float]:
        return [float(row[name]) if row.get(name) not in (None, "") else math.nan for row in rows]

    figure, (losses, quality) = plt.subplots(1, 2, figsize=(10, 3.5))
    losses.plot(epochs, column("train_loss"), "o-", label="train loss")
    losses.plot(epochs, column("eval_loss"), "o-", label="eval loss")
    losses.set(xlabel="epoch", ylabel="binary cross-entropy", title="Loss")
    losses.legend()
    quality.plot(epochs, column("eval_map"), "o-", label="eval mAP")
    quality.plot(epochs, column("eval_micro_f1"), "o-", label="eval micro-F1 at 0.5")
    quality.set(xlabel="epoch", ylim=(0, 1), title="Eval split during training")
    quality.legend()
    figure.tight_layout()
    return figure


def _gallery(db, scored, model, tags, count: int) -> list[dict]:
    """The `count` posts with the worst single error of the chosen rule, worst first."""
    scores, targets = scored.scores["model"], scored.targets
    severity = np.zeros(len(targets))
    for start in range(0, len(targets), 512):
        block = np.asarray(scores[start : start + 512], dtype=np.float32)
        actual = np.asarray(targets[start : start + 512], dtype=bool)
        predicted = mcut_mask(block) if model.chosen is None else block >= model.chosen
        missed = np.where(actual & ~predicted, 1 - block, 0)
        false_alarm = np.where(predicted & ~actual, block, 0)
        severity[start : start + 512] = np.maximum(missed.max(axis=1), false_alarm.max(axis=1))
    worst = np.argsort(-severity, kind="stable")[:count]
    gallery = []
    for index in worst:
        row = np.asarray(scores[index], dtype=np.float32)
        actual = np.asarray(targets[index], dtype=bool)
        predicted = mcut_mask(row)[0] if model.chosen is None else row >= model.chosen
        source = scored.sources[index]
        pixels = unpack_record(db.get(source))[0] if isinstance(source, bytes) else _pixels(source)
        gallery.append({
            "post": scored.post_ids[index],
            "image": _data_uri(_thumbnail(pixels)),
            "right": _named(tags, row, predicted & actual),
            "missed": _named(tags, row, actual & ~predicted),
            "false_alarms": _named(tags, row, predicted & ~actual),
        })  # fmt: skip
    return gallery


def _pixels(path: Path) -> np.ndarray:
    from alti2v.data.images import load_image

    return load_image(path, THUMBNAIL_SIDE)


def _named(tags, row, mask) -> list[tuple[str, float]]:
    return [(tags[index], float(row[index])) for index in ranked(row, mask=mask)]


def _thumbnail(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _data_uri(data: bytes, kind: str = "image/jpeg") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
table.sortable th { cursor: pointer; background: #f6f6f6; position: sticky; top: 0; }
.note { color: #666; max-width: 60em; } .ci { color: #888; font-size: 0.9em; }
img.plot { max-width: 100%; display: block; margin: 0.8em 0; }
.scroll { max-height: 480px; overflow-y: auto; display: inline-block; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 12px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px; font-size: 12px; }
.card img { display: block; margin: 0 auto 6px; }
.right { color: #1a7f37; } .missed { color: #b35900; } .false { color: #c62828; }
"""

SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((header, column) => {
  header.addEventListener("click", () => {
    const body = header.closest("table").tBodies[0];
    const ascending = header.dataset.order !== "asc";
    header.dataset.order = ascending ? "asc" : "desc";
    const key = (row) => {
      const text = row.cells[column].textContent, number = parseFloat(text);
      return isNaN(number) ? (text === "" ? -Infinity : text) : number;
    };
    [...body.rows]
      .sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (ascending ? 1 : -1))
      .forEach((row) => body.appendChild(row));
  });
});
"""


def _page(summary, judgements, tags, files: EvalFiles, pictures, gallery) -> str:
    model = summary["model"]
    rule = summary["settings"]["rule"]
    parts = [
        f"<h1>Evaluation of {_escape(Path(summary['model_folder']).name)}</h1>",
        f"<p class=note>{_escape(summary['model_folder'])} on the {_escape(summary['posts'])}: "
        f"{model['images']} images, {model['tags_with_positives']} of {model['tags']} tags with "
        f"a positive. Thresholds are fitted on one half of the posts ({model['fitting_images']}, "
        f"chosen by a hash of the post id) and scored on the other ({model['report_images']}); "
        "mAP is over all posts. Intervals: bootstrap 95% over images "
        f"({summary['settings']['bootstrap']} resamples).</p>",
        "<h2>Summary</h2>",
        _table(
            ["scorer", "mAP", f"micro-F1 ({rule})", f"macro-F1 ({rule})", "ECE"],
            [
                [
                    SCORER_NAMES[name],
                    _with_ci(summary[name]["map"], summary[name]["map_ci95"]),
                    _with_ci(
                        summary[name]["rules"][rule]["micro_f1"],
                        summary[name]["rules"][rule]["micro_f1_ci95"],
                    ),
                    _fixed(summary[name]["rules"][rule]["macro_f1"]),
                    _fixed(summary[name]["calibration"]["ece"], 4),
                ]
                for name in SCORER_NAMES
                if name in summary
            ],
        ),
        *_baselines_note(summary),
        "<h2>Thresholds</h2>",
        "<p class=note>Each rule as --pred --threshold-rule applies it, on the report half; "
        "fitted rules use thresholds fitted on the other half. A tag with no positive to fit on "
        f"keeps the constant {summary['settings']['threshold']}.</p>",
        _table(
            ["rule", "micro precision", "micro recall", "micro-F1", "macro-F1"],
            [
                [
                    name,
                    _fixed(scores["micro_precision"]),
                    _fixed(scores["micro_recall"]),
                    _with_ci(scores["micro_f1"], scores["micro_f1_ci95"]),
                    _fixed(scores["macro_f1"]),
                ]
                for name, scores in model["rules"].items()
            ],
        ),
        _calibration_note(model["calibration"]),
        "<h2>By category and by tag frequency</h2>",
        _grouped_table(summary, "map_by_category", "category", rule),
        _grouped_table(summary, "map_by_frequency", "training posts per tag", None),
        _rating_table(model["rating"]),
        "<h2>Pictures</h2>",
        *(
            f'<h3>{_escape(title)}</h3><img class=plot alt="{_escape(title)}" '
            f'src="{_data_uri(png, "image/png")}">'
            for title, png in pictures.items()
        ),
        "<h2>Per tag</h2>",
        f"<p class=note>Click a column to sort. Precision, recall and F1: rule {_escape(rule)} on "
        "the report half; threshold: the one saved (refitted on all posts); AP on all posts. "
        f"Also in {_escape(files.per_tag.name)}.</p>",
        _per_tag_table(files.per_tag),
        "<h2>Gallery: worst misses and false alarms first</h2>",
        f"<p class=note>Rule {_escape(rule)} with the saved thresholds. "
        "<span class=right>right</span>, <span class=missed>missed</span>, "
        "<span class=false>false alarm</span>; probabilities in brackets.</p>",
        _gallery_html(gallery),
    ]
    body = "\n".join(parts)
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>alt-i2v evaluation: {_escape(Path(summary['model_folder']).name)}</title>"
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n<script>{SORT_SCRIPT}</script>\n"
        "</body></html>\n"
    )


def _baselines_note(summary: dict) -> list[str]:
    """What to know when the baselines' table rows are not on the model's tags, or missing."""
    notes = []
    prior, model = summary.get("frequency_prior"), summary["model"]
    if prior and prior["tags"] != model["tags"]:
        notes.append(
            f"The baselines are scored on the dataset's {prior['tags']} tags, the model on the "
            f"{model['tags']} of its tags that have truth here."
        )
    if "approach3_skipped" in summary:
        notes.append(f"Approach 3 skipped: {_escape(summary['approach3_skipped'])}.")
    return [f"<p class=note>{' '.join(notes)}</p>"] if notes else []


def _calibration_note(calibration: dict) -> str:
    verdict = (
        f"it lowers the ECE to {calibration['ece_after_temperature']:.4f} "
        f"(by {calibration['ece'] - calibration['ece_after_temperature']:.4f}), so it is saved "
        "in thresholds.json"
        if calibration["temperature_improves"]
        else f"it would give ECE {calibration['ece_after_temperature']:.4f}, no better, so none "
        "is saved"
    )
    return (
        f"<p>Expected calibration error on the report half: {calibration['ece']:.4f}. A "
        f"temperature fitted on the other half is {calibration['fitted_temperature']:.3f}; "
        f"{verdict}.</p>"
    )


def _grouped_table(summary, key: str, title: str, rule: str | None) -> str:
    groups = list(summary["model"][key])
    names = [name for name in SCORER_NAMES if name in summary]
    headers = [title, "tags", *(f"mAP {SHORT_NAMES[name]}" for name in names)]
    if rule:
        headers.append(f"micro-F1 model ({rule})")
    rows = []
    for group in groups:
        row = [group, summary["model"][key][group]["tags"]]
        row += [_fixed(summary[name][key].get(group, {}).get("map")) for name in names]
        if rule:
            by_category = summary["model"]["rules"][rule]["by_category"].get(group, {})
            row.append(_fixed(by_category.get("micro_f1")))
        rows.append(row)
    return _table(headers, rows)


def _rating_table(rating: dict | None) -> str:
    if not rating:
        return "<p class=note>No rating tags to score as a choice.</p>"
    labels = [label.removeprefix("rating:") for label in rating["labels"]]
    rows = [
        [f"true {label}", *counts]
        for label, counts in zip(labels, rating["confusion"], strict=True)
    ]
    return (
        f"<h3>Rating as a {len(labels)}-way choice: accuracy {rating['accuracy']:.3f} "
        f"on {rating['images']} images</h3>"
        + _table(["", *(f"predicted {label}" for label in labels)], rows)
    )


def _per_tag_table(path: Path) -> str:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return f"<div class=scroll>{_table(rows[0], rows[1:], 'sortable')}</div>"


def _gallery_html(gallery: list[dict]) -> str:
    cards = []
    for item in gallery:
        lines = [
            f'<img src="{item["image"]}" alt="post {_escape(item["post"])}">',
            f"<b>post {_escape(item['post'])}</b>",
        ]
        for key, css in (("missed", "missed"), ("false_alarms", "false"), ("right", "right")):
            if item[key]:
                named = ", ".join(
                    f"{_escape(tag)} ({probability:.2f})" for tag, probability in item[key]
                )
                lines.append(f"<div class={css}>{key.replace('_', ' ')}: {named}</div>")
        cards.append(f"<div class=card>{''.join(lines)}</div>")
    return f"<div class=gallery>{''.join(cards)}</div>"


def _table(headers, rows, css: str = "") -> str:
    head = "".join(f"<th>{_escape(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table class='{css}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _with_ci(value, interval) -> str:
    if value is None:
        return ""
    text = _fixed(value)
    return (
        f"{text} <span class=ci>[{interval[0]:.3f}, {interval[1]:.3f}]</span>" if interval else text
    )


def _fixed(value, digits: int = 3) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _escape(value) -> str:
    return html.escape(str(value))


def write_comparison(files: ComparisonFiles, comparison: dict) -> None:
    """comparison.md: the side-by-side table and each pair's difference."""
    settings = comparison["settings"]
    names = ", ".join(model["name"] for model in comparison["models"])
    skipped = sum(comparison["skipped"].values())
    pair_headers = ["second - first", "tags", "mAP", "difference [95%]", "verdict",
                    f"micro-F1 ({settings['rule']})", "difference [95%]", "verdict"]  # fmt: skip
    pair_rows = [
        [f"{pair['second']} - {pair['first']}", str(pair["tags"]), *_pair_cells(pair["map"]),
         *_pair_cells(pair["micro_f1"])]
        for pair in comparison["pairs"]
    ]  # fmt: skip
    lines = [
        f"# Comparison of {names}",
        "",
        f"{comparison['posts']}: {comparison['images']} images ({skipped} skipped), judged "
        f"against {comparison['truth_tags']} true tags, matched by name. mAP over all images; "
        f"micro-F1 by rule {settings['rule']} on {comparison['report_images']} images, with "
        f"thresholds fitted on the other {comparison['fitting_images']}. Intervals: bootstrap "
        f"95% over images ({settings['bootstrap']} resamples), the same resamples for every "
        "model, so a difference's interval is paired.",
        "",
        *_markdown(*comparison_rows(comparison)),
        "",
        "## Each pair, on the tags both cover (second minus first)",
        "",
        *_markdown(pair_headers, pair_rows),
        "",
    ]
    atomic_write_text(files.table, "\n".join(lines))


def comparison_rows(comparison: dict) -> tuple[list[str], list[list[str]]]:
    """The side-by-side table: each model, then the baselines, with their numbers."""
    rule = comparison["settings"]["rule"]
    headers = ["scorer", "layout", "tags covered", "mAP [95%]", f"micro-F1 {rule} [95%]", "ECE"]
    truth = comparison["truth_tags"]
    rows = [
        [
            SHORT_NAMES.get(row["name"], row["name"]), row["layout"],
            f"{row['tags_covered']} of {truth}", plain(row["map"], row["map_ci95"]),
            plain(row["micro_f1"], row["micro_f1_ci95"]), _fixed(row["ece"], 4) or "n/a",
        ]
        for row in [*comparison["models"], *comparison["baselines"].values()]
    ]  # fmt: skip
    if "approach3_skipped" in comparison:
        rows.append(["approach 3", "baseline", "", f"skipped: {comparison['approach3_skipped']}",
                     "", ""])  # fmt: skip
    return headers, rows


def _pair_cells(difference: dict) -> list[str]:
    return [
        f"{plain(difference['first'])} -> {plain(difference['second'])}",
        plain(difference["difference"], difference["difference_ci95"], sign="+"),
        difference["verdict"],
    ]


def plain(value: float | None, interval: list | None = None, sign: str = "") -> str:
    """`0.673 [0.653, 0.694]`, a number as the terminal and comparison.md show it (`sign` "+"
    for a difference: `+0.021 [-0.004, +0.046]`); n/a for none."""
    if value is None:
        return "n/a"
    text = f"{value:{sign}.3f}"
    return text + (f" [{interval[0]:{sign}.3f}, {interval[1]:{sign}.3f}]" if interval else "")


def _markdown(headers: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return [line(headers), line(["---"] * len(headers)), *map(line, rows)]
