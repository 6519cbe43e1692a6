"""--pred: tag image files with a trained model, in batches, one result per image on stdout.

Text lines keep the original's format, `{name} tag={tag} prob={prob}`; `--json` prints one
object per image. An unreadable file gets an error (stderr in text mode, an "error" object in
JSON) and every other image is still tagged.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.images import image_batches, to_model_input
from alti2v.layout import IMAGE_EXTENSIONS
from alti2v.models import LoadedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    image: str  # the path as the user gave it
    tags: list[tuple[str, float]] | None = None
    error: str | None = None


def predict_files(
    loaded: LoadedModel,
    paths: list[str],
    top_k: int = defaults.TOP_K,
    threshold: float = defaults.THRESHOLD,
    batch_size: int = defaults.PRED_BATCH_SIZE,
) -> Iterator[Prediction]:
    """Predictions for `paths`, in order, computed `batch_size` images at a time."""
    info = loaded.info
    for batch in image_batches(paths, info["image_size"], info["resize"], batch_size):
        scores = iter([])
        if batch.pixels is not None:
            inputs = to_model_input(batch.pixels, info["preprocess"])
            scores = iter(loaded.model.predict_on_batch(inputs))
        for path, error in zip(batch.paths, batch.errors, strict=True):
            if error is not None:
                yield Prediction(path, error=error)
            else:
                yield Prediction(path, tags=top_tags(next(scores), loaded.tags, top_k, threshold))


def expand_inputs(paths: list[str]) -> list[str]:
    """Files as given; a folder becomes its image files (by extension), sorted by name."""
    expanded = []
    for path in paths:
        folder = Path(path)
        if folder.is_dir():
            images = (child for child in sorted(folder.iterdir()) if child.is_file())
            expanded += [str(child) for child in images if child.suffix.lower() in IMAGE_EXTENSIONS]
        else:
            expanded.append(path)
    return expanded


def top_tags(
    probabilities: np.ndarray, tags: list[str], top_k: int, threshold: float
) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities, kind="stable")
    if top_k:
        order = order[:top_k]
    return [
        (tags[index], float(probabilities[index]))
        for index in order
        if probabilities[index] >= threshold
    ]


def format_text(prediction: Prediction) -> str:
    return "".join(
        f"{prediction.image} tag={tag} prob={probability:.6f}\n"
        for tag, probability in prediction.tags
    )


def format_json(prediction: Prediction) -> str:
    if prediction.error is not None:
        record = {"image": prediction.image, "error": prediction.error}
    else:
        tags = [{"tag": tag, "prob": round(probability, 6)} for tag, probability in prediction.tags]
        record = {"image": prediction.image, "tags": tags}
    return json.dumps(record, ensure_ascii=False) + "\n"


def print_predictions(predictions: Iterable[Prediction], as_json: bool) -> int:
    """Write each prediction as it comes; return how many images failed."""
    failures = 0
    for prediction in predictions:
        if prediction.error is not None:
            failures += 1
            if not as_json:
                log.error("%s; not tagged", prediction.error)
        if prediction.error is None or as_json:
            sys.stdout.write(format_json(prediction) if as_json else format_text(prediction))
            sys.stdout.flush()
    return failures
