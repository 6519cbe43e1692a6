"""--vec: illustration vectors, one inner layer of a trained model read out per image.

The candidate layers are the tag logits (the `Dense(num_tags)` output before the sigmoid), the
2048-wide layer mean-pooled over its 4x4 positions, and VGG16's `block5_pool` mean-pooled; each
vector is L2-normalised, so an inner product is a cosine similarity. One sub-model, built once,
gives the chosen layer and the tag probabilities of a batch in one forward pass.

    extractor = VectorExtractor(loaded, "logits")
    vectors, probabilities = extractor(pixels)   # uint8 (n, size, size, 3)
    codes = binary_codes(vectors)                # packed sign bits, 1/32 of the memory
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from alti2v.data.files import atomic_write_bytes, atomic_write_text
from alti2v.data.images import to_model_input
from alti2v.data.skips import InputError
from alti2v.model.network import head_layers
from alti2v.model.saved import LoadedModel
from alti2v.tag.inputs import InputImage
from alti2v.tag.predict import decoded_batches


def _logits(model: keras.Model):
    return head_layers(model)[2].output


def _pooled_dense(model: keras.Model):
    return keras.ops.mean(head_layers(model)[1].output, axis=(1, 2))


def _pooled_block5(model: keras.Model):
    return keras.ops.mean(model.get_layer("block5_pool").output, axis=(1, 2))


# The candidate layers by the names --layer accepts: each maps the model to a symbolic output.
LAYERS: dict[str, Callable[[keras.Model], object]] = {
    "logits": _logits,
    "dense": _pooled_dense,
    "block5": _pooled_block5,
}


class VectorExtractor:
    """Vectors of `layer` and tag probabilities for batches of stored (uint8) pixels."""

    def __init__(self, loaded: LoadedModel, layer: str):
        model = loaded.model
        self.model = keras.Model(model.input, [LAYERS[layer](model), model.output])
        self.preprocess = loaded.info["preprocess"]
        self.width = self.model.output_shape[0][-1]

    def __call__(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, probabilities = self.model.predict_on_batch(
            to_model_input(pixels, self.preprocess)
        )
        return normalise(np.asarray(features, dtype=np.float32)), np.asarray(probabilities)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; an all-zero row stays zero."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def binary_codes(vectors: np.ndarray) -> np.ndarray:
    """Sign bits packed eight to a byte (for logits: the tags above probability 0.5)."""
    return np.packbits(vectors > 0, axis=-1)


@dataclass(frozen=True)
class FileVector:
    image: str  # the path as the user gave it
    vector: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    error: str | None = None


def vectors_of_files(
    loaded: LoadedModel, extractor: VectorExtractor, paths: list[str], batch_size: int
) -> Iterator[FileVector]:
    """A vector per file, in order, `batch_size` images per forward pass; an unreadable file
    gives its error instead. Files are decoded as --build decodes them (model.json's settings)."""
    images = [InputImage(Path(path), Path(path).parent) for path in paths]
    for batch, given in zip(
        decoded_batches(images, loaded.info, batch_size), _chunks(paths, batch_size), strict=True
    ):
        good = [pixels for _, pixels in batch if isinstance(pixels, np.ndarray)]
        rows = iter(zip(*extractor(np.stack(good)), strict=True)) if good else iter([])
        for (_, pixels), path in zip(batch, given, strict=True):
            if isinstance(pixels, InputError):
                yield FileVector(path, error=str(pixels))
            else:
                yield FileVector(path, *next(rows))


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def format_vector_json(result: FileVector, binary: bool) -> str:
    """One JSON line: the vector as numbers, or the packed sign bits as hex, or the error."""
    if result.error is not None:
        record = {"image": result.image, "error": result.error}
    elif binary:
        record = {"image": result.image, "binary": binary_codes(result.vector).tobytes().hex()}
    else:
        record = {"image": result.image, "vector": [round(float(x), 7) for x in result.vector]}
    return json.dumps(record) + "\n"


def write_vectors(out: Path, results: list[FileVector], width: int, binary: bool) -> Path:
    """The vectors of `results` as one .npy at `out` (float32 rows, or uint8 rows of packed
    sign bits) and, beside it as `<stem>.txt`, the image of each row, one a line. Returns the
    list's path."""
    if binary:
        rows = np.zeros((0, -(-width // 8)), np.uint8)  # ceil: packbits pads the last byte
        rows = np.stack([binary_codes(result.vector) for result in results]) if results else rows
    else:
        rows = np.zeros((0, width), np.float32)
        rows = np.stack([result.vector for result in results]) if results else rows
    names = out.with_suffix(".txt")
    atomic_write_text(names, "".join(f"{result.image}\n" for result in results))
    buffer = io.BytesIO()
    np.save(buffer, rows, allow_pickle=False)
    atomic_write_bytes(out, buffer.getvalue())
    return names
