"""Encodings: each turns a drawn image into the image that is saved, its extension and options.

`ENCODERS` maps an encoding name of `ENCODING_WEIGHTS` (or "rgba_png", for transparent posts) to
a function of (image, rng) returning (image, extension, `Image.save` options).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from synthetic.world import NOISE_SHARE


def _with_noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    if rng.random() >= NOISE_SHARE:
        return image
    pixels = np.asarray(image, dtype=np.float32)
    # One noise value per pixel, shared by the channels: grain without colour speckles.
    noise = rng.normal(0.0, rng.uniform(2.0, 5.0), size=(*pixels.shape[:2], 1))
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")


def _encode_jpeg(image: Image.Image, rng) -> tuple[Image.Image, str, dict]:
    return _with_noise(image, rng), "jpg", {"format": "JPEG", "quality": int(rng.integers(80, 96))}


def _encode_webp(image: Image.Image, rng) -> tuple[Image.Image, str, dict]:
    return _with_noise(image, rng), "webp", {"format": "WEBP", "quality": int(rng.integers(80, 96))}


def _encode_png(image: Image.Image, rng) -> tuple[Image.Image, str, dict]:
    return image, "png", {"format": "PNG"}


def _encode_palette_png(image: Image.Image, rng) -> tuple[Image.Image, str, dict]:
    colours = int(rng.integers(64, 257))
    return image.quantize(colours, method=Image.Quantize.FASTOCTREE), "png", {"format": "PNG"}


def _encode_greyscale(image: Image.Image, rng) -> tuple[Image.Image, str, dict]:
    grey = image.convert("L")
    if rng.random() < 0.5:
        return grey, "jpg", {"format": "JPEG", "quality": int(rng.integers(80, 96))}
    return grey, "png", {"format": "PNG"}


ENCODERS: dict[str, Callable[[Image.Image, np.random.Generator], tuple[Image.Image, str, dict]]] = {
    "jpeg": _encode_jpeg,
    "png": _encode_png,
    "rgba_png": _encode_png,
    "palette_png": _encode_palette_png,
    "webp": _encode_webp,
    "greyscale": _encode_greyscale,
}
