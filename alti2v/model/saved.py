"""Exported models: `models/<time>/` holds model.keras, vocab.txt and model.json.

The vocabulary travels with every model, so a model can tag images anywhere; model.json records
how its input was made (image size, resize filter, preprocessing) and how well it scored.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from alti2v.data.files import atomic_write_json, atomic_write_text, publish_folder
from alti2v.data.layout import MODEL_FILE
from alti2v.errors import PipelineError, one_line

VOCAB_FILE = "vocab.txt"
INFO_FILE = "model.json"


class ModelError(PipelineError):
    pass


@dataclass(frozen=True)
class LoadedModel:
    model: keras.Model
    tags: list[str]
    info: dict
    folder: Path
    # Test-time augmentation: "none" (one forward pass) or "flip"; the CLI's default is
    # defaults.TTA.
    tta: str = "none"

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(images, size, size, 3) model input -> (images, tags) float32 probabilities; with
        tta "flip", the mean of the image's and its mirror image's."""
        scores = np.asarray(self.model.predict_on_batch(batch), dtype=np.float32)
        if self.tta == "flip":
            mirrored = np.asarray(self.model.predict_on_batch(batch[:, :, ::-1]), np.float32)
            scores = (scores + mirrored) / 2
        return scores


def export_model(models: Path, model: keras.Model, tags: list[str], info: dict) -> Path:
    """Save an inference copy of `model` (no optimizer state) with its vocabulary."""
    folder = models / time.strftime("%Y%m%d-%H%M%S")
    suffix = 1
    while folder.exists():
        folder, suffix = models / f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}", suffix + 1
    with publish_folder(folder) as temporary:
        model.save(temporary / MODEL_FILE)
        atomic_write_text(temporary / VOCAB_FILE, "".join(f"{tag}\n" for tag in tags))
        atomic_write_json(temporary / INFO_FILE, {**info, "num_tags": len(tags)})
    return folder


def find_model(path: Path | None, models: Path) -> Path:
    """The model folder for --model PATH (a folder or its model.keras), else the newest one."""
    if path is not None:
        folder = path.parent if path.suffix == ".keras" else path
        if not (folder / MODEL_FILE).is_file():
            raise ModelError(f"{path}: no {MODEL_FILE} there; give a folder made by --train")
        return folder
    candidates = sorted(models.glob(f"[!.]*/{MODEL_FILE}")) if models.is_dir() else []
    if not candidates:
        raise ModelError(f"{models}: no trained model; run --train or give --model PATH")
    return candidates[-1].parent


def load_model(folder: Path) -> LoadedModel:
    try:
        tags = (folder / VOCAB_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as error:
        raise ModelError(f"{folder / VOCAB_FILE}: unreadable ({one_line(error)}); {_FIX}") from None
    try:
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        raise ModelError(f"{folder / INFO_FILE}: unreadable ({one_line(error)}); {_FIX}") from None
    try:
        model = keras.models.load_model(folder / MODEL_FILE, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors, KeyError...
        raise ModelError(f"{folder / MODEL_FILE}: unreadable ({one_line(error)}); {_FIX}") from None
    if model.output_shape[-1] != len(tags):
        raise ModelError(
            f"{folder}: {VOCAB_FILE} has {len(tags)} tags, the model {model.output_shape[-1]}"
        )
    return LoadedModel(model, tags, info, folder)


_FIX = "delete that model folder and run --train again to export it anew, or give another --model"
