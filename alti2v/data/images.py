"""Image files to arrays: the one place that decides which pixels the model sees.

`load_image` turns any file the pipeline accepts into a square uint8 RGB array; `--build` stores
that array and `--pred` calls the same function, so training and serving see the same pixels.
`to_model_input` turns stored arrays into the float input of the network.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from alti2v import defaults
from alti2v.data.skips import NO_IMAGE, OVERSIZED, UNREADABLE, InputError

# Pillow's filters by the names the CLI accepts. "area" averages every source pixel that falls
# into a target pixel (Pillow's BOX), the right thing for large downscales.
RESIZE_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "area": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

# keras.applications.vgg16.preprocess_input ("caffe" mode) in numpy: BGR order, ImageNet mean
# removed. Written here so the data pipeline needs no deep-learning backend.
_IMAGENET_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def _vgg_input(pixels: np.ndarray) -> np.ndarray:
    """`pixels[..., ::-1].astype(np.float32) - mean`, to the bit, about 3x faster: numpy runs a
    ufunc over a reversed axis of 3, or against a broadcast mean of 3, in loops of 3 elements.
    Here the channels swap as three strided copies of bytes, and the mean is subtracted from
    whole image rows (a row's means tiled), in loops of a row's length."""
    bgr = np.empty_like(pixels)
    for channel in range(3):
        bgr[..., channel] = pixels[..., 2 - channel]
    floats = bgr.astype(np.float32)
    width = pixels.shape[-2] if pixels.ndim >= 2 else 1
    rows = floats.reshape(-1, width * 3)  # a view: floats is a fresh contiguous array
    rows -= np.tile(_IMAGENET_MEAN_BGR, width)
    return floats


PREPROCESSORS = {
    "raw": lambda pixels: pixels.astype(np.float32),
    "vgg": _vgg_input,
    "bgr": lambda pixels: pixels[..., ::-1].astype(np.float32),  # WD taggers: BGR, 0-255
}


def load_image(
    path: Path,
    image_size: int = defaults.IMAGE_SIZE,
    resize: str = defaults.RESIZE,
    max_pixels: int = defaults.MAX_PIXELS,
    pad: bool = False,
) -> np.ndarray:
    """Decode `path` (first frame, EXIF orientation applied, transparency on white) and resize
    it to an `image_size` x `image_size` x 3 uint8 array; `pad` first pads it white to a
    centred square (as WD taggers are fed, enlarged with LANCZOS when smaller) rather than
    stretching it. Raises InputError."""
    previous_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # Pillow only warns below twice its own limit; we want a hard stop at ours.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = max_pixels
            with Image.open(path) as image:
                if image.width * image.height > max_pixels:
                    raise InputError(path, OVERSIZED, _oversized(image, max_pixels))
                if resize != "nearest":
                    # JPEG can decode at 1/2, 1/4, 1/8 scale for free; stay at least twice the
                    # target so the resize filter still does the real work.
                    image.draft("RGB", (image_size * 2, image_size * 2))
                # In place: otherwise Pillow copies every image that needs no turning.
                ImageOps.exif_transpose(image, in_place=True)
                rgb = _to_rgb(image)
                resample = RESIZE_FILTERS[resize]
                if pad:
                    rgb = _padded_square(rgb)
                    if rgb.width < image_size:
                        # The WD tools enlarge with LANCZOS (kohya's resize_image, ComfyUI):
                        # the area filter only shrinks.
                        resample = Image.Resampling.LANCZOS
                resized = rgb.resize((image_size, image_size), resample)
                return np.asarray(resized, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(path, OVERSIZED, str(error)) from error
    except FileNotFoundError as error:
        raise InputError(path, NO_IMAGE, "file not found") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Pillow signals corrupt, truncated and unknown files with all of these.
        raise InputError(path, UNREADABLE, f"cannot decode image ({error})") from error
    finally:
        # A Pillow global: restore it, or a small max_pixels breaks every later Image.open.
        Image.MAX_IMAGE_PIXELS = previous_limit


@dataclass(frozen=True)
class InputSpec:
    """How an image file becomes a model's pixels: `load_image`'s choices, as a model records
    them (model.json, a WD folder's info) and as --build recorded those it stored."""

    image_size: int
    resize: str
    pad: bool = False

    @classmethod
    def of_model(cls, info: dict) -> InputSpec:
        return cls(info["image_size"], info["resize"], info.get("pad", False))

    @classmethod
    def of_database(cls, meta: dict) -> InputSpec:
        return cls(meta["image_size"], meta["resize"])  # --build never pads

    def reads_stored_pixels(self, meta: dict | None) -> bool:
        """Whether the records of a database (`meta`: its record of how they were made; None
        from --build of old, which stored unpadded pixels at the model's size) are this input."""
        return not self.pad if meta is None else self == InputSpec.of_database(meta)

    def load(self, path: Path) -> np.ndarray:
        return load_image(path, self.image_size, self.resize, pad=self.pad)


def load_image_or_error(
    path: Path,
    image_size: int = defaults.IMAGE_SIZE,
    resize: str = defaults.RESIZE,
    max_pixels: int = defaults.MAX_PIXELS,
    pad: bool = False,
) -> np.ndarray | InputError:
    """load_image's pixels, or its error returned (not raised), so that one bad file fails alone
    in a batch or a worker process."""
    try:
        return load_image(path, image_size, resize, max_pixels, pad)
    except InputError as error:
        return error


def _padded_square(image: Image.Image) -> Image.Image:
    """`image` centred on a white square of its longer side (left and top get the smaller half
    of an odd padding, as kohya's tagger pads)."""
    if image.width == image.height:
        return image
    side = max(image.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return square


def _oversized(image: Image.Image, max_pixels: int) -> str:
    return f"{image.width}x{image.height} pixels is over the limit of {max_pixels:,}"


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greyscale: scale the 0-65535 range down to 8 bits.
        pixels = np.asarray(image, dtype=np.float32)
        scale = 257.0 if pixels.max(initial=0) > 255 else 1.0
        image = Image.fromarray(np.clip(pixels / scale, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    # convert() would copy an image that is RGB already (most JPEGs).
    return image if image.mode == "RGB" else image.convert("RGB")


def to_model_input(pixels: np.ndarray, preprocess: str) -> np.ndarray:
    """uint8 RGB arrays (any leading shape) to the float32 input the network was trained on."""
    return PREPROCESSORS[preprocess](pixels)
