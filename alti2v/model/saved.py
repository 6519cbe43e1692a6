"""Exported models: `models/<time>/` holds model.keras, vocab.txt and model.json; --model may
also name a folder in the WD tagger layout (alti2v.model.wd_folder), which --pred and the vector
modes run.

The vocabulary travels with every model, so a model can tag images anywhere; model.json records
how its input was made (image size, resize filter, preprocessing) and how well it scored.

This module imports Keras only to load a model from --train: a WD folder runs in onnxruntime,
so the tag-only install (requirements-tag.txt) needs no Keras, and there a model that does ends
in one line saying what to install.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from alti2v.data.files import atomic_write_json, publish_folder, read_json
from alti2v.data.layout import MODEL_FILE, ModelFiles
from alti2v.data.vocabulary import load_vocabulary, write_vocabulary
from alti2v.errors import FULL_INSTALL, PipelineError, one_line
from alti2v.model.wd_folder import is_wd_folder, load_wd_folder

if TYPE_CHECKING:
    import keras


class ModelError(PipelineError):
    pass


@dataclass(frozen=True)
class LoadedModel:
    model: keras.Model  # or, for a WD folder, an onnxruntime session with predict_on_batch
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
    """Save an inference copy of `model` (no optimizer state, computing in float32 whichever
    precision trained it) with its vocabulary."""
    from alti2v.model.precision import at_precision

    model = at_precision(model, "float32", keep_optimizer=False)
    folder = models / time.strftime("%Y%m%d-%H%M%S")
    suffix = 1
    while folder.exists():
        folder, suffix = models / f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}", suffix + 1
    with publish_folder(folder) as temporary:
        files = ModelFiles(temporary)
        model.save(files.model)
        write_vocabulary(files.vocab, tags)
        atomic_write_json(files.info, {**info, "num_tags": len(tags)})
    return folder


def trained_here(loaded: LoadedModel, mode: str, why: str) -> LoadedModel:
    """`loaded` itself when it came from --train; a WD tagger folder ends `mode` in one line."""
    if loaded.info.get("layout") == "wd":
        raise ModelError(f"{loaded.folder}: a WD tagger folder; {mode} {why}; --pred runs it")
    return loaded


def find_model(path: Path | None, models: Path) -> Path:
    """The model folder for --model PATH (a folder or its model.keras, or a WD tagger folder),
    else the newest one."""
    if path is not None:
        folder = path.parent if path.suffix in (".keras", ".onnx") else path
        if not ModelFiles(folder).model.is_file() and not is_wd_folder(folder):
            raise ModelError(
                f"{path}: no {MODEL_FILE} there, nor model.onnx with selected_tags.csv; give a "
                "folder made by --train or --export, or a WD tagger folder"
            )
        return folder
    candidates = sorted(models.glob(f"[!.]*/{MODEL_FILE}")) if models.is_dir() else []
    if not candidates:
        raise ModelError(f"{models}: no trained model; run --train or give --model PATH")
    return candidates[-1].parent


def needs_keras(folder: Path) -> bool:
    """Whether the model of `folder` runs in Keras (a model from --train) rather than in
    onnxruntime (a WD-layout folder); one that needs Keras where it is not installed ends here,
    in one line."""
    if is_wd_folder(folder) and not ModelFiles(folder).model.is_file():
        return False
    try:
        import keras  # noqa: F401  # only to learn whether it is there; load_model uses it
    except ModuleNotFoundError as error:
        raise ModelError(
            f"{folder}: a model from --train runs in Keras, and {error.name} is not installed "
            f"here; {FULL_INSTALL}"
        ) from None
    return True


def load_model(folder: Path, precision: str = "float32") -> LoadedModel:
    """The model of `folder`, computing in `precision` (a WD folder: onnxruntime's float32)."""
    if not needs_keras(folder):
        session, tags, info = load_wd_folder(folder)
        return LoadedModel(session, tags, info, folder)
    import keras

    from alti2v.model.precision import at_precision

    files = ModelFiles(folder)
    tags = load_vocabulary(files.vocab, ModelError, _FIX, missing=None)
    info = read_json(files.info, ModelError, _FIX)
    try:
        model = keras.models.load_model(files.model, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors, KeyError...
        raise ModelError(f"{files.model}: unreadable ({one_line(error)}); {_FIX}") from None
    if model.output_shape[-1] != len(tags):
        raise ModelError(
            f"{folder}: {files.vocab.name} has {len(tags)} tags, the model {model.output_shape[-1]}"
        )
    return LoadedModel(at_precision(model, precision), tags, info, folder)


_FIX = "delete that model folder and run --train again to export it anew, or give another --model"
