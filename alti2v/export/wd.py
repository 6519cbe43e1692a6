"""--export: a trained model as a folder in the WD tagger layout, which kohya sd-scripts,
ComfyUI-WD14-Tagger, taggui, the WebUI tagger and deepghs' imgutils read.

- `model.onnx` (alti2v.export.graph): [N, 448, 448, 3] BGR 0-255 in, probabilities out, one
  per row of the CSV;
- `selected_tags.csv`: `tag_id,name,category,count[,best_threshold]`: exactly the four ratings
  first (category 9, WD's names), then every general tag (0), then every character tag (4).
  kohya takes argmax(prob[:4]) as the rating and indexes prob[4:] as general then character, so
  no other category may appear: copyright, artist, meta and uncategorised tags are folded into
  general (the default) or left out (`other_tags="drop"`). `tag_id` is the row's number: the
  tools read names, and the vocabulary has no Danbooru ids. `best_threshold`, where --eval has
  fitted this model, is its per-tag F1 threshold (as imgutils reads it);
- `thresholds.csv` (`category,name,threshold`, imgutils' per-category defaults, from --eval's
  category rule) and `categories.json`, where --eval has run;
- `preprocess.json`: what the tool feeds the graph and what the graph does inside, as data;
- `README.md`: a model card with the metadata block the Hugging Face hub reads.

The folder is written beside its destination and renamed into place when complete.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from alti2v import PROJECT_URL
from alti2v.data.files import atomic_write_text, publish_folder, read_json
from alti2v.data.layout import ModelFiles
from alti2v.data.vocabulary import vocabulary_hash
from alti2v.errors import PipelineError
from alti2v.export.graph import OPSET, WD_INPUT_SIZE, tagger_graph
from alti2v.model.saved import LoadedModel
from alti2v.model.wd_folder import ONNX_FILE, TAGS_FILE, WD_CATEGORIES

log = logging.getLogger(__name__)

# WD's rating rows, in its order, and the vocabulary tag each is.
RATINGS = ("general", "sensitive", "questionable", "explicit")
CATEGORIES = {name: WD_CATEGORIES[name] for name in ("rating", "general", "character")}
RATING_CATEGORY, GENERAL_CATEGORY, CHARACTER_CATEGORY = CATEGORIES.values()
FOLDED = frozenset({"copyright", "artist", "meta", "unknown"})
THRESHOLD_RULE = "f1"  # the fitted rule written as best_threshold


class ExportError(PipelineError):
    pass


@dataclass(frozen=True)
class Row:
    name: str
    category: int
    count: int
    column: int | None  # the model's output for this row; None: a rating it lacks (always 0)

    @property
    def tag(self) -> str:
        """The vocabulary's name of the row's tag (a rating row's is `rating:<name>`)."""
        return self.name if self.category != RATING_CATEGORY else f"rating:{self.name}"


def wd_rows(tags: list[str], categories: dict, counts: dict, other_tags: str) -> list[Row]:
    """The CSV's rows: ratings, general, character; `other_tags` folds or drops the rest."""
    index = {tag: column for column, tag in enumerate(tags)}
    ratings = [
        Row(name, RATING_CATEGORY, counts.get(f"rating:{name}", 0), index.get(f"rating:{name}"))
        for name in RATINGS
    ]
    general, character = [], []
    for column, tag in enumerate(tags):
        category = categories.get(tag, "rating" if tag.startswith("rating:") else "unknown")
        row = Row(tag, GENERAL_CATEGORY, counts.get(tag, 0), column)
        if category == "general" or (category in FOLDED and other_tags == "general"):
            general.append(row)
        elif category == "character":
            character.append(Row(tag, CHARACTER_CATEGORY, row.count, column))
    return ratings + general + character


def export_wd(loaded: LoadedModel, destination: Path, other_tags: str, eval_summary: Path) -> dict:
    """Write the WD folder of `loaded` to `destination` (which must not exist or be empty);
    return what was written: rows by category, seconds, and whether thresholds went in."""
    started = time.perf_counter()
    info = loaded.info
    rows = wd_rows(loaded.tags, info.get("categories", {}), info.get("counts", {}), other_tags)
    thresholds = _fitted(loaded)
    graph = tagger_graph(
        loaded.model, info.get("preprocess", "vgg"), info.get("resize", "area"),
        [row.column for row in rows],
    )  # fmt: skip
    summary = read_json(eval_summary, ExportError, "run --eval again", missing=None)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with publish_folder(destination) as folder:
        onnx.save(graph, folder / ONNX_FILE)
        del graph
        atomic_write_text(folder / TAGS_FILE, _tags_csv(rows, thresholds))
        if thresholds:
            atomic_write_text(folder / "thresholds.csv", _category_csv(rows, thresholds))
            categories = [{"category": number, "name": name} for name, number in CATEGORIES.items()]
            atomic_write_text(folder / "categories.json", json.dumps(categories, indent=1))
        atomic_write_text(folder / "preprocess.json", json.dumps(_preprocess(info), indent=1))
        atomic_write_text(folder / "README.md", _model_card(loaded, rows, summary, other_tags))
    by_category = _by_category(rows)
    return {
        "folder": str(destination), "rows": by_category, "thresholds": bool(thresholds),
        "dropped": len(loaded.tags) - sum(row.column is not None for row in rows),
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip


def _by_category(rows: list[Row]) -> dict[str, int]:
    return {
        name: sum(row.category == number for row in rows) for name, number in CATEGORIES.items()
    }


def _fitted(loaded: LoadedModel) -> dict[str, dict[str, float]]:
    """--eval's fitted rules for this model ({} when it has not been evaluated)."""
    saved = read_json(ModelFiles(loaded.folder).thresholds, ExportError, "run --eval again", {})
    if saved and saved.get("vocab_hash") != vocabulary_hash(loaded.tags):
        log.warning("export: %s was fitted for another vocabulary; left out", loaded.folder)
        return {}
    return saved.get("rules", {})


def _csv(header: list[str], lines: list[list]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(lines)
    return text.getvalue()


def _tags_csv(rows: list[Row], thresholds: dict) -> str:
    fitted = thresholds.get(THRESHOLD_RULE)
    header = ["tag_id", "name", "category", "count"] + (["best_threshold"] if fitted else [])
    lines = []
    for number, row in enumerate(rows):
        line = [number, row.name, row.category, row.count]
        if fitted:
            line.append(f"{fitted.get(row.tag, 1.0):.6f}")  # 1: a rating never seen never passes
        lines.append(line)
    return _csv(header, lines)


def _category_csv(rows: list[Row], thresholds: dict) -> str:
    """imgutils' thresholds.csv: one threshold per category, from --eval's category rule."""
    rule = thresholds.get("category", {})
    lines = []
    for name, number in CATEGORIES.items():
        values = [rule[row.tag] for row in rows if row.category == number and row.tag in rule]
        if values:
            lines.append([number, name, f"{float(np.median(values)):.6f}"])
    return _csv(["category", "name", "threshold"], lines)


def _preprocess(info: dict) -> dict:
    return {
        "input": {
            "name": "input", "layout": "NHWC", "size": WD_INPUT_SIZE, "channels": "BGR",
            "range": [0, 255], "dtype": "float32",
            "prepare": "pad to a square with white (255), centred; resize to 448 (area when "
            "shrinking), as the WD taggers are fed",
        },
        "in_graph": {
            "resize": f"{WD_INPUT_SIZE} -> {info.get('image_size', 150)}, Pillow's "
            f"{info.get('resize', 'area')} filter as a matrix product per axis",
            "preprocess": info.get("preprocess", "vgg"),
            "output": "sigmoid probabilities, one per row of selected_tags.csv",
        },
        "opset": OPSET,
    }  # fmt: skip


def _model_card(loaded: LoadedModel, rows: list[Row], summary: dict | None, other: str) -> str:
    counts = _by_category(rows)
    recipe = ("weights", "freeze", "augment", "loss", "image_size", "resize")
    folded = "folded into general" if other == "general" else "left out"
    lines = [
        "---",
        "library_name: onnx",
        "pipeline_tag: image-classification",
        "tags: [onnx, wd-tagger, multi-label-image-classification, anime, illustration, "
        "danbooru, vgg16, alt-i2v]",
        "---",
        "",
        f"# alt-i2v tagger: {len(loaded.tags)} tags",
        "",
        f'VGG16 transfer learning as in "alternative illustration2vec" (2017), trained with '
        f"[alt-i2v]({PROJECT_URL}) and exported to the WD tagger layout: `model.onnx` takes "
        f"[N, 448, 448, 3] BGR 0-255, padded white to a square; `selected_tags.csv` lists "
        f"{counts['rating']} ratings, {counts['general']} general and {counts['character']} "
        "character tags (copyright, "
        f"artist and meta tags {folded}).",
        "",
        f"Trained for {loaded.info.get('metrics', {}).get('epoch', '?')} epochs on the posts of "
        "its data directory; recipe: "
        + ", ".join(f"{key} {loaded.info[key]}" for key in recipe if key in loaded.info),
        "",
    ]
    model = (summary or {}).get("model")
    if model:
        interval = model.get("map_ci95") or [float("nan")] * 2
        lines += [
            f"## Evaluation ({summary.get('posts', '?')} held-out posts, alt-i2v --eval)",
            "",
            "| scorer | mAP | 95% interval |",
            "|---|---|---|",
            f"| this model | {model['map']:.3f} | {interval[0]:.3f} to {interval[1]:.3f} |",
        ]
        for name, label in (("frequency_prior", "frequency prior"), ("approach3", "approach 3")):
            if summary.get(name):
                other_interval = summary[name].get("map_ci95") or [float("nan")] * 2
                lines.append(
                    f"| {label} | {summary[name]['map']:.3f} | {other_interval[0]:.3f} to "
                    f"{other_interval[1]:.3f} |"
                )
        lines.append("")
    else:
        lines += ["Not evaluated: run `alt_i2v.py --eval` before `--export` for its scores "
                  "and fitted thresholds.", ""]  # fmt: skip
    return "\n".join(lines)
