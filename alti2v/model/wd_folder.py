"""A folder in the WD tagger layout (`model.onnx` + `selected_tags.csv`, as --export writes it or
as SmilingWolf's taggers ship) as a model --pred runs, with onnxruntime (CUDA when it has it).

Its vocabulary is the CSV's: rating rows (category 9) become `rating:<name>`, so --pred's
rating handling treats them as the 4-way choice they are; 0 is general, 4 character, and the
other Danbooru categories keep their names. Its input is the WD one: the image padded white to
a centred square, shrunk by area (Pillow's BOX) to the input's side, BGR, 0-255.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from alti2v.errors import PipelineError, one_line

ONNX_FILE, TAGS_FILE = "model.onnx", "selected_tags.csv"
# Danbooru's category numbers, which the layout's CSV uses (9: WD's ratings); --export writes
# rating, general and character only.
WD_CATEGORIES = {"general": 0, "artist": 1, "copyright": 3, "character": 4, "meta": 5, "rating": 9}
CATEGORY_NAMES = {str(number): name for name, number in WD_CATEGORIES.items()}
# How --pred decodes for such a model (alti2v.data.images.load_image's pad, resize, preprocess).
WD_INPUT = {"pad": True, "resize": "area", "preprocess": "bgr"}


class WDFolderError(PipelineError):
    pass


def is_wd_folder(folder: Path) -> bool:
    return (folder / ONNX_FILE).is_file() and (folder / TAGS_FILE).is_file()


class WDSession:
    """An onnxruntime session answering `predict_on_batch` as a Keras model does."""

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
        (self.input,) = self.session.get_inputs()
        self.output = self.session.get_outputs()[0]

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output.name], {self.input.name: batch})[0]


def load_wd_folder(folder: Path) -> tuple[WDSession, list[str], dict]:
    """The session, the vocabulary and model.json-like info of a WD-layout folder; a folder
    that breaks the layout ends in one line naming what is wrong."""
    tags, categories = _read_tags(folder / TAGS_FILE)
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
    info = {**WD_INPUT, "image_size": shape[1], "categories": categories, "layout": "wd"}
    return session, tags, info


def _read_tags(path: Path) -> tuple[list[str], dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise WDFolderError(f"{path}: unreadable ({one_line(error)})") from None
    if not rows or rows[0][:3] != ["tag_id", "name", "category"]:
        raise WDFolderError(f"{path}: its header is not tag_id,name,category,...")
    tags, categories = [], {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) < 3 or row[2] not in CATEGORY_NAMES:
            raise WDFolderError(f"{path}: line {number} has no known category: {row}")
        category = CATEGORY_NAMES[row[2]]
        tag = f"rating:{row[1]}" if category == "rating" else row[1]
        tags.append(tag)
        categories[tag] = category
    ratings = [index for index, tag in enumerate(tags) if categories[tag] == "rating"]
    if ratings and ratings != list(range(len(ratings))):
        raise WDFolderError(f"{path}: the rating rows (category 9) must come first")
    return tags, categories
