"""A folder in the WD tagger layout (`model.onnx` + `selected_tags.csv`, as --export writes it or
as SmilingWolf's taggers ship) as a model --pred and the vector modes run, with onnxruntime (CUDA
when it has it).

Its vocabulary is the CSV's: rating rows (category 9) become `rating:<name>`, so --pred's
rating handling treats them as the 4-way choice they are; 0 is general, 4 character, and the
other Danbooru categories keep their names. Its input is the WD one: the image padded white to
a centred square, shrunk by area (Pillow's BOX) to the input's side, BGR, 0-255. Its fitted
thresholds are the layout's own: `best_threshold` of the CSV (--threshold-rule f1) and
`thresholds.csv`, one per category (rule category), as deepghs' imgutils reads them.

A second output, after the probabilities, is the image's embedding, which the vector modes read:
deepghs' wd14_tagger_with_embeddings adds the classifier's input there (imgutils takes outputs
by position, `get_outputs()[1]`; the name is the inner tensor's), and --export puts the model's
tag logits there as `embedding`, naming the --layer it is in the ONNX metadata.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from alti2v.errors import PipelineError, one_line

ONNX_FILE, TAGS_FILE, CATEGORY_THRESHOLDS_FILE = "model.onnx", "selected_tags.csv", "thresholds.csv"
# Danbooru's category numbers, which the layout's CSV uses (9: WD's ratings); --export writes
# rating, general and character only.
WD_CATEGORIES = {"general": 0, "artist": 1, "copyright": 3, "character": 4, "meta": 5, "rating": 9}
CATEGORY_NAMES = {str(number): name for name, number in WD_CATEGORIES.items()}
# How --pred decodes for such a model (alti2v.data.images.load_image's pad, resize, preprocess).
WD_INPUT = {"pad": True, "resize": "area", "preprocess": "bgr"}
# The ONNX metadata key under which --export names the --layer its embedding output is; an
# embedding without it (deepghs') is the layer "embedding".
EMBEDDING_LAYER_KEY, FOREIGN_EMBEDDING = "alt_i2v.embedding_layer", "embedding"
BEST_THRESHOLD = "best_threshold"  # the CSV's column of per-tag thresholds (imgutils' name)


class WDFolderError(PipelineError):
    pass


def is_wd_folder(folder: Path) -> bool:
    return (folder / ONNX_FILE).is_file() and (folder / TAGS_FILE).is_file()


class WDSession:
    """An onnxruntime session answering `predict_on_batch` as a Keras model does; with an
    embedding output, `with_embedding` gives it beside the probabilities."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
        providers = [name for name in ("CUDAExecutionProvider",) if name in available]
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), providers=[*providers, "CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own Fail, InvalidGraph, ...
            raise WDFolderError(f"{path}: onnxruntime cannot load it ({one_line(error)})") from None
        self.runtime = f"onnxruntime {onnxruntime.__version__}"
        (self.input,) = self.session.get_inputs()
        self.output, *others = self.session.get_outputs()
        self.embedding = others[0] if others else None
        metadata = self.session.get_modelmeta().custom_metadata_map
        # The --layer the embedding is; None where there is no embedding output.
        self.embedding_layer = None
        if self.embedding is not None:
            self.embedding_layer = metadata.get(EMBEDDING_LAYER_KEY, FOREIGN_EMBEDDING)

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output.name], {self.input.name: batch})[0]

    def with_embedding(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, probabilities) of a batch, from one run."""
        names = [self.embedding.name, self.output.name]
        embeddings, probabilities = self.session.run(names, {self.input.name: batch})
        return embeddings, probabilities

    def embedding_width(self) -> int:
        """The embedding's length: its declared shape's, else one blank image's."""
        width = self.embedding.shape[-1]
        if isinstance(width, int):
            return width
        side = self.input.shape[1]
        return self.with_embedding(np.zeros((1, side, side, 3), np.float32))[0].shape[-1]

    def describe(self) -> str:
        """The start-up line, as alti2v.model.device describes Keras' device."""
        return f"{self.runtime} on {', '.join(self.session.get_providers())}, precision float32"


def load_wd_folder(folder: Path) -> tuple[WDSession, list[str], dict]:
    """The session, the vocabulary and model.json-like info of a WD-layout folder (with the
    fitted rules its files hold, by --threshold-rule name); a folder that breaks the layout ends
    in one line naming what is wrong."""
    tags, categories, best = _read_tags(folder / TAGS_FILE)
    session = WDSession(folder / ONNX_FILE)
    shape = session.input.shape
    if len(shape) != 4 or shape[3] != 3 or not isinstance(shape[1], int) or shape[1] != shape[2]:
        raise WDFolderError(
            f"{folder / ONNX_FILE}: input shape {shape} is not [N, side, side, 3] (NHWC)"
        )
    width = session.output.shape[-1]
    if isinstance(width, int) and width != len(tags):
        raise WDFolderError(
            f"{folder}: the model gives {width} outputs, {TAGS_FILE} lists {len(tags)} tags"
        )
    fitted = {"f1": best} if best is not None else {}
    by_category = _category_thresholds(folder / CATEGORY_THRESHOLDS_FILE)
    if by_category and set(categories.values()) <= set(by_category):
        fitted["category"] = [by_category[categories[tag]] for tag in tags]
    info = {
        **WD_INPUT, "image_size": shape[1], "categories": categories, "layout": "wd",
        "fitted": fitted,
    }  # fmt: skip
    return session, tags, info


def _read_tags(path: Path) -> tuple[list[str], dict[str, str], list[float] | None]:
    """The CSV's tags, their categories, and its best_threshold column (None without one)."""
    rows = _csv_rows(path)
    if not rows or rows[0][:3] != ["tag_id", "name", "category"]:
        raise WDFolderError(f"{path}: its header is not tag_id,name,category,...")
    best_column = rows[0].index(BEST_THRESHOLD) if BEST_THRESHOLD in rows[0] else None
    tags, categories, best = [], {}, []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) < 3 or row[2] not in CATEGORY_NAMES:
            raise WDFolderError(f"{path}: line {number} has no known category: {row}")
        category = CATEGORY_NAMES[row[2]]
        tag = f"rating:{row[1]}" if category == "rating" else row[1]
        tags.append(tag)
        categories[tag] = category
        if best_column is not None:
            best.append(_threshold(row, best_column, path, number))
    ratings = [index for index, tag in enumerate(tags) if categories[tag] == "rating"]
    if ratings and ratings != list(range(len(ratings))):
        raise WDFolderError(f"{path}: the rating rows (category 9) must come first")
    return tags, categories, best if best_column is not None else None


def _category_thresholds(path: Path) -> dict[str, float]:
    """thresholds.csv (`category,name,threshold`) as {category name: threshold}; {} without it."""
    if not path.is_file():
        return {}
    rows = _csv_rows(path)
    if not rows or rows[0][:3] != ["category", "name", "threshold"]:
        raise WDFolderError(f"{path}: its header is not category,name,threshold")
    thresholds = {}
    for number, row in enumerate(rows[1:], start=2):
        value = _threshold(row, 2, path, number)  # first: it refuses a short row
        thresholds[CATEGORY_NAMES.get(row[0], row[1])] = value
    return thresholds


def _csv_rows(path: Path) -> list[list[str]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise WDFolderError(f"{path}: unreadable ({one_line(error)})") from None


def _threshold(row: list[str], column: int, path: Path, number: int) -> float:
    try:
        value = float(row[column])
    except (IndexError, ValueError):
        value = float("nan")
    if not 0 <= value <= 1:  # nan fails too
        raise WDFolderError(f"{path}: line {number} has no threshold in [0, 1]: {row}")
    return value
