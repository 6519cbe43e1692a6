"""Run a trained model over image files: decoders in parallel with inference, one result per image.

    for prediction in predict_images(loaded, found.images, batch_size=16):
        prediction.probabilities  # one float per vocabulary tag, or None with .error set

A pool of decoder threads (`alti2v.data.images.load_image_or_error`, the pixels training saw)
keeps the next batches ready while the network runs on the current one; results come back in
input order. A batch gives the probabilities a one-image run gives (to float32 rounding, tested
to 1e-5). An unreadable file becomes a Prediction with an `error`, and every other image is
still predicted.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from alti2v import defaults
from alti2v.data.images import InputSpec, load_image_or_error, to_model_input
from alti2v.data.skips import InputError
from alti2v.model.saved import LoadedModel
from alti2v.tag.inputs import InputImage

# Threads measured faster than processes here (bench/pred_speed.py): Pillow's decoders release
# the GIL, and arrays need no pickling between processes.
DECODER_POOLS: dict[str, type[Executor]] = {
    "thread": ThreadPoolExecutor,
    "process": ProcessPoolExecutor,
}


@dataclass(frozen=True)
class Prediction:
    image: InputImage
    probabilities: np.ndarray | None = None
    error: str | None = None


def predict_images(
    loaded: LoadedModel,
    images: Iterable[InputImage],
    batch_size: int = defaults.BATCH_SIZE,
    workers: int = defaults.DECODE_WORKERS,
    pool: str = "thread",
) -> Iterator[Prediction]:
    """Predictions for `images`, in order, `batch_size` images per forward pass."""
    for batch in decoded_batches(images, loaded.info, batch_size, workers, pool):
        yield from _predict_batch(loaded, batch)


def decoded_batches(
    images: Iterable[InputImage],
    info: dict,
    batch_size: int,
    workers: int = defaults.DECODE_WORKERS,
    pool: str = "thread",
) -> Iterator[list[tuple[InputImage, np.ndarray | InputError]]]:
    """Lists of up to `batch_size` (image, pixels or error), in input order, decoded ahead by a
    pool as the model's `info` (model.json) says; --pred and --vec both read images this way."""
    with DECODER_POOLS[pool](max_workers=workers or os.cpu_count()) as executor:
        decoded = _decode_ahead(executor, images, 2 * batch_size, InputSpec.of_model(info))
        batch: list[tuple[InputImage, np.ndarray | InputError]] = []
        for item in decoded:
            batch.append(item)
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def predict_arrays(loaded: LoadedModel, pixels: np.ndarray) -> np.ndarray:
    """(images, size, size, 3) uint8 -> (images, tags) probabilities, in one forward pass."""
    batch = to_model_input(pixels, loaded.info["preprocess"])
    return loaded.predict(batch)


def _decode_ahead(
    executor: Executor, images: Iterable[InputImage], ahead: int, spec: InputSpec
) -> Iterator[tuple[InputImage, np.ndarray | InputError]]:
    """Decoded images in input order, with up to `ahead` decodes running or done in advance."""
    pending: deque = deque()
    for image in images:
        decoding = executor.submit(
            load_image_or_error, image.path, spec.image_size, spec.resize, pad=spec.pad
        )
        pending.append((image, decoding))
        if len(pending) > ahead:
            first, future = pending.popleft()
            yield first, future.result()
    while pending:
        first, future = pending.popleft()
        yield first, future.result()


def _predict_batch(
    loaded: LoadedModel, batch: list[tuple[InputImage, np.ndarray | InputError]]
) -> Iterator[Prediction]:
    good = [pixels for _, pixels in batch if isinstance(pixels, np.ndarray)]
    rows = iter(predict_arrays(loaded, np.stack(good)) if good else [])
    for image, pixels in batch:
        if isinstance(pixels, InputError):
            yield Prediction(image, error=str(pixels))
        else:
            yield Prediction(image, probabilities=next(rows))
