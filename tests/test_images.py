"""Tests for alti2v.data.images: every accepted file kind decodes to the same square uint8 RGB array
(transparency on white, first frame, EXIF orientation, 16-bit scaled), bad files raise
InputError with a countable reason, and the model input matches Keras' VGG16 preprocessing."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alti2v.data.images import RESIZE_FILTERS, load_image, to_model_input
from alti2v.data.skips import InputError

SIDE = 150  # the model's input side; images this size are not resampled
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)
LOSSY_TOLERANCE = 12  # per channel, for JPEG and WebP


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def assert_colour(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 0) -> None:
    difference = np.abs(pixel.astype(int) - np.asarray(colour))
    assert difference.max() <= tolerance, (pixel.tolist(), colour)


def half_and_half(mode: str, left, right, size: tuple[int, int] = (SIDE, SIDE)) -> Image.Image:
    image = Image.new(mode, size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def test_jpeg_decodes_to_square_uint8_rgb(tmp_path: Path) -> None:
    path = save(half_and_half("RGB", RED, BLUE), tmp_path / "a.jpg", quality=95)
    pixels = load_image(path)
    assert pixels.shape == (SIDE, SIDE, 3)
    assert pixels.dtype == np.uint8
    assert_colour(pixels[75, 20], RED, LOSSY_TOLERANCE)
    assert_colour(pixels[75, 130], BLUE, LOSSY_TOLERANCE)


def test_rgba_png_is_composited_on_white(tmp_path: Path) -> None:
    # Fully transparent black on the left: it must come out white, not black.
    image = half_and_half("RGBA", (0, 0, 0, 0), (*RED, 255))
    pixels = load_image(save(image, tmp_path / "a.png"), resize="nearest")
    assert_colour(pixels[75, 20], WHITE)
    assert_colour(pixels[75, 130], RED)


def test_half_transparent_pixel_is_blended_with_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 128))
    pixels = load_image(save(image, tmp_path / "a.png"), resize="nearest")
    assert_colour(pixels[10, 10], (127, 127, 127), tolerance=1)


def test_palette_png_with_transparency_is_composited_on_white(tmp_path: Path) -> None:
    image = half_and_half("P", 0, 1)
    image.putpalette([0, 0, 0, *RED] + [0] * (256 - 2) * 3)
    path = save(image, tmp_path / "a.png", transparency=0)
    with Image.open(path) as reopened:
        assert (reopened.mode, reopened.info.get("transparency")) == ("P", 0)
    pixels = load_image(path, resize="nearest")
    assert_colour(pixels[75, 20], WHITE)
    assert_colour(pixels[75, 130], RED)


def test_webp_decodes(tmp_path: Path) -> None:
    path = save(half_and_half("RGB", RED, BLUE), tmp_path / "a.webp", quality=95)
    pixels = load_image(path)
    assert pixels.shape == (SIDE, SIDE, 3)
    assert_colour(pixels[75, 20], RED, LOSSY_TOLERANCE)
    assert_colour(pixels[75, 130], BLUE, LOSSY_TOLERANCE)


def test_gif_gives_its_first_frame(tmp_path: Path) -> None:
    first, second = Image.new("RGB", (SIDE, SIDE), RED), Image.new("RGB", (SIDE, SIDE), BLUE)
    path = save(first, tmp_path / "a.gif", save_all=True, append_images=[second], duration=100)
    with Image.open(path) as reopened:
        assert reopened.n_frames == 2
    pixels = load_image(path, resize="nearest")
    assert (pixels == np.asarray(RED, dtype=np.uint8)).all()


def test_greyscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    pixels = load_image(save(half_and_half("L", 40, 200), tmp_path / "a.png"), resize="nearest")
    assert pixels.shape == (SIDE, SIDE, 3)
    assert_colour(pixels[75, 20], (40, 40, 40))
    assert_colour(pixels[75, 130], (200, 200, 200))


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    cyan_and_magenta_ink = (0, 255, 255, 0)  # red in print
    path = save(Image.new("CMYK", (SIDE, SIDE), cyan_and_magenta_ink), tmp_path / "a.jpg")
    with Image.open(path) as reopened:
        assert reopened.mode == "CMYK"
    pixels = load_image(path)
    assert pixels.shape == (SIDE, SIDE, 3)
    assert_colour(pixels[75, 75], RED, LOSSY_TOLERANCE)


def test_16_bit_png_is_scaled_to_8_bits(tmp_path: Path) -> None:
    values = np.zeros((SIDE, SIDE), dtype=np.uint16)
    values[:, 50:100] = 128 * 257
    values[:, 100:] = 65535
    path = save(Image.fromarray(values), tmp_path / "a.png")
    with Image.open(path) as reopened:
        assert reopened.mode.startswith("I")
        assert np.asarray(reopened).max() == 65535
    pixels = load_image(path, resize="nearest")
    assert_colour(pixels[75, 20], (0, 0, 0))
    assert_colour(pixels[75, 75], (128, 128, 128))
    assert_colour(pixels[75, 130], (255, 255, 255))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 200 wide and 100 high with red in the top-left corner; Orientation 6 means "turn
    # 90 degrees clockwise to display", which puts that corner at the top right.
    image = Image.new("RGB", (200, 100), WHITE)
    image.paste(RED, (0, 0, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(image, tmp_path / "a.jpg", quality=95, exif=exif.tobytes())
    pixels = load_image(path)
    # Displayed 100 x 200: the red block covers x 60..100, y 0..40, so x 90..150, y 0..30 at 150.
    assert_colour(pixels[10, 140], RED, LOSSY_TOLERANCE)
    for row, column in ((10, 10), (140, 10), (140, 140), (60, 140)):
        assert_colour(pixels[row, column], WHITE, LOSSY_TOLERANCE)


@pytest.mark.parametrize("resize", sorted(RESIZE_FILTERS))
def test_every_resize_filter_gives_the_model_shape(tmp_path: Path, resize: str) -> None:
    path = save(half_and_half("RGB", RED, BLUE, size=(400, 260)), tmp_path / "a.jpg", quality=95)
    pixels = load_image(path, resize=resize)
    assert pixels.shape == (SIDE, SIDE, 3)
    assert pixels.dtype == np.uint8
    assert_colour(pixels[75, 20], RED, LOSSY_TOLERANCE)
    assert_colour(pixels[75, 130], BLUE, LOSSY_TOLERANCE)


def test_other_image_size(tmp_path: Path) -> None:
    path = save(half_and_half("RGB", RED, BLUE), tmp_path / "a.png")
    assert load_image(path, image_size=32).shape == (32, 32, 3)


def test_truncated_jpeg_is_unreadable(tmp_path: Path) -> None:
    whole = save(half_and_half("RGB", RED, BLUE, size=(400, 300)), tmp_path / "a.jpg")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InputError) as caught:
        load_image(truncated)
    assert caught.value.reason == "unreadable"
    assert str(caught.value).startswith(f"{truncated}: cannot decode image")


def test_random_bytes_are_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as caught:
        load_image(path)
    assert (caught.value.reason, caught.value.path) == ("unreadable", path)


def test_image_over_max_pixels_is_oversized(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (100, 80), RED), tmp_path / "a.png")
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(InputError) as caught:
        load_image(path, max_pixels=5000)
    assert caught.value.reason == "oversized"
    assert re.search(r"\b8,?000 pixels", str(caught.value)), str(caught.value)  # the size
    # The limit is Pillow's global: a small one must not leak into later Image.open calls.
    assert limit_before == Image.MAX_IMAGE_PIXELS
    assert load_image(path, max_pixels=8000).shape == (SIDE, SIDE, 3)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_image(tmp_path / "nothing.jpg")
    assert caught.value.reason == "no image"
    assert str(caught.value) == f"{tmp_path / 'nothing.jpg'}: file not found"


def test_image_error_survives_pickling() -> None:
    # --build decodes in worker processes, which send InputErrors back pickled.
    error = InputError(Path("imgs/7.png"), "unreadable", "cannot decode image (broken)")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, InputError)
    assert (copy.path, copy.reason, copy.detail) == (error.path, error.reason, error.detail)
    assert str(copy) == str(error) == "imgs/7.png: cannot decode image (broken)"


@pytest.fixture
def pixel_batch() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)


def test_vgg_input_equals_keras_preprocess_input(pixel_batch: np.ndarray) -> None:
    import keras

    expected = keras.applications.vgg16.preprocess_input(pixel_batch.astype(np.float32))
    actual = to_model_input(pixel_batch, "vgg")
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("shape", [(3,), (5, 3), (2, 8, 8, 3), (7, 9, 3), (0, 4, 4, 3)])
def test_vgg_input_equals_the_plain_formula_to_the_bit(shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    for batch in (pixels, pixels[..., ::2, :, :] if pixels.ndim == 4 else pixels):
        expected = batch[..., ::-1].astype(np.float32) - np.float32([103.939, 116.779, 123.68])
        actual = to_model_input(batch, "vgg")
        assert actual.dtype == np.float32 and actual.shape == expected.shape
        np.testing.assert_array_equal(actual, expected)


def test_raw_input_is_the_pixels_as_float32(pixel_batch: np.ndarray) -> None:
    actual = to_model_input(pixel_batch, "raw")
    assert actual.dtype == np.float32
    np.testing.assert_array_equal(actual, pixel_batch.astype(np.float32))


def test_pad_centres_the_image_on_a_white_square_instead_of_stretching_it(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (40, 21), (200, 0, 0)).save(path)  # odd padding: 19 rows, 9 above
    pixels = load_image(path, 40, "nearest", pad=True)
    assert pixels.shape == (40, 40, 3)
    assert (pixels[:9] == 255).all() and (pixels[30:] == 255).all()
    assert (pixels[9:30] == (200, 0, 0)).all()
    stretched = load_image(path, 40, "nearest")
    assert (stretched == (200, 0, 0)).all()


def test_padded_input_is_kohyas_wd_feed(tmp_path):
    # kohya's tagger (bench.common.kohya_wd14_input, call for call): a small image enlarged
    # with LANCZOS exactly as it does; a large one shrunk by OpenCV's area filter there and
    # Pillow's box filter here, equal but for rounding.
    from bench.common import kohya_wd14_input

    rng = np.random.default_rng(0)

    def both(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        # Smooth colour fields, as drawings are: on noise the two area filters' weights differ
        # visibly at a ratio of 2.23.
        path = tmp_path / f"{width}x{height}.png"
        field = Image.fromarray(rng.integers(0, 256, (height // 20, width // 20, 3), np.uint8))
        field.resize((width, height), Image.Resampling.BILINEAR).save(path)
        ours = load_image(path, 448, "area", pad=True).astype(np.float32)
        return ours, kohya_wd14_input(path)[..., ::-1]  # theirs is BGR

    ours, theirs = both(300, 180)
    np.testing.assert_array_equal(ours, theirs)
    ours, theirs = both(1000, 700)
    assert np.abs(ours - theirs).mean() < 1.0
