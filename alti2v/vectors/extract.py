"""--vec: illustration vectors, one inner layer of a model read out per image.

For a model from --train, the layer is --layer's (alti2v.vectors.layers: the tag logits by
default); a WD-layout folder has one, its embedding output (alti2v.model.wd_folder), read by
onnxruntime without Keras: --export's are the same logits. Each vector is L2-normalised, so an
inner product is a cosine similarity, and comes with the tag probabilities of the same forward
pass.

    layer = vector_layer(loaded, asked=None)     # "logits", or a WD folder's own
    extractor = VectorExtractor(loaded, layer)
    vectors, probabilities = extractor(pixels)   # uint8 (n, size, size, 3)
    codes = binary_codes(vectors)                # packed sign bits, 1/32 of the memory
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.data.files import atomic_write_bytes, atomic_write_text
from alti2v.data.images import to_model_input
from alti2v.data.skips import InputError
from alti2v.errors import PipelineError
from alti2v.model.saved import LoadedModel
from alti2v.model.wd_folder import ONNX_FILE
from alti2v.tag.inputs import InputImage
from alti2v.tag.predict import decoded_batches


class VectorError(PipelineError):
    pass


def vector_layer(loaded: LoadedModel, asked: str | None) -> str:
    """The layer the vector modes read: --layer's (`asked`; None when not given, the default)
    for a model from --train; for a WD folder, the one its embedding output is, which --layer
    may only name."""
    if loaded.info.get("layout") != "wd":
        return asked or defaults.VECTOR_LAYER
    own = loaded.model.embedding_layer
    if own is None:
        raise VectorError(
            f"{loaded.folder / ONNX_FILE}: no embedding output after its probabilities, which "
            "the vector modes read; export the model again (--export adds it, as deepghs' "
            "wd14_tagger_with_embeddings have it)"
        )
    if asked not in (None, own):
        raise VectorError(
            f"{loaded.folder}: a WD folder gives one vector, its embedding output ({own}); "
            f"--layer {asked} needs the model from --train"
        )
    return own


class VectorExtractor:
    """Vectors of `layer` and tag probabilities for batches of uint8 pixels, from one forward
    pass: a sub-model of a Keras model, or a WD folder's two outputs."""

    def __init__(self, loaded: LoadedModel, layer: str):
        self.preprocess = loaded.info["preprocess"]
        if loaded.info.get("layout") == "wd":
            vector_layer(loaded, layer)  # the folder's own layer, or a one-line error
            self.forward, self.width = loaded.model.with_embedding, loaded.model.embedding_width()
        else:
            from alti2v.vectors.layers import keras_readout

            self.forward, self.width = keras_readout(loaded.model, layer)

    def __call__(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, probabilities = self.forward(to_model_input(pixels, self.preprocess))
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
