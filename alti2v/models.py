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

from alti2v.errors import PipelineError
from alti2v.layout import atomic_write_json, atomic_write_text

MODEL_FILE = "model.keras"
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


def export_model(models: Path, model: keras.Model, tags: list[str], info: dict) -> Path:
    """Save an inference copy of `model` (no optimizer state) with its vocabulary."""
    folder = models / time.strftime("%Y%m%d-%H%M%S")
    suffix = 1
    while folder.exists():
        folder, suffix = models / f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}", suffix + 1
    temporary = models / f".tmp-{folder.name}"
    temporary.mkdir(parents=True)
    model.save(temporary / MODEL_FILE)
    atomic_write_text(temporary / VOCAB_FILE, "".join(f"{tag}\n" for tag in tags))
    atomic_write_json(temporary / INFO_FILE, {**info, "num_tags": len(tags)})
    temporary.rename(folder)
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
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"{folder}: incomplete model folder ({error})") from None
    model = keras.models.load_model(folder / MODEL_FILE, compile=False)
    if model.output_shape[-1] != len(tags):
        raise ModelError(
            f"{folder}: {VOCAB_FILE} has {len(tags)} tags, the model {model.output_shape[-1]}"
        )
    return LoadedModel(model, tags, info, folder)
