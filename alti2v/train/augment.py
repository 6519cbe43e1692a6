"""Training-time augmentation of the packed images, in the input pipeline (not the model's graph).

Each image of each epoch gets its own random draw, seeded by (seed, epoch, post key): the same
post is changed differently every epoch, and a resumed or re-run epoch sees exactly the same
pixels as an uninterrupted one, whatever the batch or the thread that reads it.

- flip: mirror left-right with probability 1/2 (no tag of an illustration has a side);
- crop: a random crop of 80-100% of each side, resized back (small zoom and shift);
- light: brightness and contrast each within +-20%; never hue or saturation, so hair and eye
  colours, which are tags, stay what they are.

    augment = Augmenter(("flip", "crop"), seed=0)
    images = augment(images, keys, epoch=3)  # (N, H, W, 3) uint8 in and out
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

CROP_SIDE = (0.8, 1.0)  # share of each side a crop keeps
LIGHT_RANGE = 0.2  # largest relative change of brightness and of contrast


def _flip(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image[:, ::-1] if rng.random() < 0.5 else image


def _crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    crop_height = round(height * rng.uniform(*CROP_SIDE))
    crop_width = round(width * rng.uniform(*CROP_SIDE))
    top = rng.integers(0, height - crop_height + 1)
    left = rng.integers(0, width - crop_width + 1)
    box = (left, top, left + crop_width, top + crop_height)
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR, box=box))


def _light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    brightness, contrast = 1 + rng.uniform(-LIGHT_RANGE, LIGHT_RANGE, size=2)
    pixels = image.astype(np.float32)
    mean = pixels.mean()
    changed = (pixels - mean) * contrast + mean * brightness
    return np.clip(changed, 0, 255).round().astype(np.uint8)


# Applied in this order whatever order the flag lists them in.
AUGMENTATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "flip": _flip,
    "crop": _crop,
    "light": _light,
}


def parse_augment(text: str) -> tuple[str, ...]:
    """ "flip,crop" -> ("flip", "crop"); "none" -> (). Raises ValueError naming a bad entry."""
    if text.strip() == "none":
        return ()
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(names - set(AUGMENTATIONS))
    if unknown or not names:
        raise ValueError(
            f"--augment: unknown {', '.join(unknown) or 'empty list'}; "
            f"use none or a comma list of {', '.join(AUGMENTATIONS)}"
        )
    return tuple(name for name in AUGMENTATIONS if name in names)


class Augmenter:
    def __init__(self, names: tuple[str, ...], seed: int):
        self.steps = [AUGMENTATIONS[name] for name in names]
        self.seed = seed

    def __call__(self, images: np.ndarray, keys: list[bytes], epoch: int) -> np.ndarray:
        augmented = np.empty_like(images)
        for position, (image, key) in enumerate(zip(images, keys, strict=True)):
            rng = np.random.default_rng([self.seed, epoch, zlib.crc32(key)])
            for step in self.steps:
                image = step(image, rng)
            augmented[position] = image
        return augmented
