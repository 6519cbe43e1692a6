"""One image, pixel for pixel, through every path that feeds the network.

Four posts drawn by `synthetic` (an RGB JPEG, a PNG with alpha, a greyscale JPEG and a palette
PNG: each way synthetic/encodings.py saves a post but WebP) are taken through --maeshori and
--build by the CLI. The pixels --build stored in LevelDB are then the reference every other path
must give to the bit: --pred's decode, --eval --eval-dir's, the feature cache's input, the
training batches' (augment none) and bench.quality's approach 3. The stored pixels themselves are
checked against Pillow's plain decode, and the "vgg" model input against Keras' own
`keras.applications.vgg16.preprocess_input`.

Every path decodes through alti2v.data.images.load_image, or reads the pixels it stored, so
nothing differs; a difference here is a training/serving skew (STYLE.md item 3), not noise.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import synthetic
from alti2v import defaults
from alti2v.data.images import RESIZE_FILTERS, InputSpec, to_model_input
from alti2v.data.layout import DataDir
from alti2v.data.posts import find_image
from alti2v.data.records import (
    SPLITS,
    open_db,
    parse_record_key,
    read_meta,
    record_keys,
    unpack_record,
)
from alti2v.data.vocabulary import load_vocabulary
from alti2v.evaluate.posts import folder_posts
from alti2v.tag.inputs import InputImage
from alti2v.tag.predict import decoded_batches
from alti2v.train.batches import PostBatches

SEED = 0
SEARCHED = 24  # posts drawn to find one of each kind (seed 0 has them all among its first 18)
# (Pillow format, mode) of each kind of file the test feeds.
KINDS = {
    "rgb_jpeg": ("JPEG", "RGB"),
    "alpha_png": ("PNG", "RGBA"),
    "greyscale_jpeg": ("JPEG", "L"),
    "palette_png": ("PNG", "P"),
}
WHITE = (255, 255, 255, 255)


@dataclass(frozen=True)
class Built:
    """The data directory --build made of one post of each kind, and what it stored."""

    data: DataDir
    post_ids: dict[str, str]  # kind -> post id
    pixels: dict[str, np.ndarray]  # post id -> the record's pixels
    keys: dict[str, bytes]  # post id -> its record key
    tags: list[str]
    meta: dict  # the database's meta record: the image size and filter it was built with

    def image(self, kind: str) -> Path:
        return find_image(self.data.imgs, self.post_ids[kind])


def file_kind(path: Path) -> str | None:
    with Image.open(path) as image:
        found = (image.format, image.mode)
    return next((kind for kind, format_mode in KINDS.items() if format_mode == found), None)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, alt_i2v) -> Built:
    drawn = tmp_path_factory.mktemp("drawn")
    synthetic.generate(drawn, SEARCHED, seed=SEED)
    post_ids: dict[str, str] = {}
    for post_id in map(str, range(1, SEARCHED + 1)):
        kind = file_kind(find_image(drawn, post_id))
        if kind is not None:
            post_ids.setdefault(kind, post_id)
    assert set(post_ids) == set(KINDS), f"seed {SEED} drew no {set(KINDS) - set(post_ids)}"
    data = DataDir(tmp_path_factory.mktemp("pixels"))
    data.imgs.mkdir()
    for post_id in post_ids.values():
        for path in drawn.glob(f"{post_id}.*"):
            shutil.copy2(path, data.imgs / path.name)
    # Under MIN_POSTS_FOR_POOL posts --build decodes in its own process; a larger build's
    # worker processes call the same load_image.
    alt_i2v("--maeshori", "--build", "--data-dir", data.root)
    db = open_db(data.db)
    try:
        keys = {parse_record_key(key)[1]: key for split in SPLITS for key in record_keys(db, split)}
        pixels = {post_id: unpack_record(db.get(key))[0] for post_id, key in keys.items()}
        meta = read_meta(db, data.db)
    finally:
        db.close()
    assert set(keys) == set(post_ids.values())
    return Built(data, post_ids, pixels, keys, load_vocabulary(data.vocab), meta)


def pillow_decode(path: Path, image_size: int, resize: str) -> np.ndarray:
    """The file as plain Pillow reads it, on white, resized with the build's filter."""
    with Image.open(path) as image:
        # load_image lets JPEG decode at a reduced scale while both sides stay at twice the
        # target or more; below that the draft is the full decode, which this compares with.
        assert image.format != "JPEG" or min(image.size) < 4 * image_size, image.size
        rgba = image.convert("RGBA")
    on_white = Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE), rgba).convert("RGB")
    resized = on_white.resize((image_size, image_size), RESIZE_FILTERS[resize])
    return np.asarray(resized, dtype=np.uint8)


@pytest.mark.parametrize("kind", KINDS)
def test_the_build_stores_what_pillow_decodes(built: Built, kind: str) -> None:
    pixels = built.pixels[built.post_ids[kind]]
    assert pixels.dtype == np.uint8
    assert pixels.shape == (built.meta["image_size"], built.meta["image_size"], 3)
    expected = pillow_decode(built.image(kind), built.meta["image_size"], built.meta["resize"])
    np.testing.assert_array_equal(pixels, expected)
    if kind == "greyscale_jpeg":
        assert (pixels == pixels[..., :1]).all()  # one grey in all three channels


def test_the_alpha_png_has_transparent_pixels_that_come_out_white(built: Built) -> None:
    with Image.open(built.image("alpha_png")) as image:
        alpha = np.asarray(image.getchannel("A"))
    assert alpha.min() == 0  # else the test would not see transparency handled
    # Posts with a transparent background leave the top left corner bare.
    assert alpha[0, 0] == 0
    assert tuple(built.pixels[built.post_ids["alpha_png"]][0, 0]) == WHITE[:3]


def test_pred_decodes_the_pixels_the_build_stored(built: Built) -> None:
    info = {"image_size": built.meta["image_size"], "resize": built.meta["resize"]}
    images = [InputImage(built.image(kind), built.data.imgs) for kind in KINDS]
    (batch,) = decoded_batches(images, info, batch_size=len(images))
    for (image, pixels), kind in zip(batch, KINDS, strict=True):
        assert image.path == built.image(kind)
        np.testing.assert_array_equal(pixels, built.pixels[built.post_ids[kind]], err_msg=kind)


def test_eval_dir_decodes_the_pixels_the_build_stored(built: Built) -> None:
    spec = InputSpec.of_database(built.meta)
    posts, count = folder_posts(built.data.imgs, {spec}, lambda truth: True)
    decoded = {post.post_id: post.pixels[spec] for post in posts}
    assert count == len(KINDS)
    assert set(decoded) == set(built.pixels)
    for post_id, pixels in decoded.items():
        np.testing.assert_array_equal(pixels, built.pixels[post_id], err_msg=post_id)


def expected_input(built: Built, post_ids: list[str]) -> np.ndarray:
    """The stored pixels of `post_ids` as the network's "vgg" input."""
    return to_model_input(np.stack([built.pixels[post_id] for post_id in post_ids]), "vgg")


def test_training_batches_feed_the_stored_pixels(built: Built) -> None:
    post_ids = list(built.keys)
    keys = [built.keys[post_id] for post_id in post_ids]
    db = open_db(built.data.db)
    try:
        batches = PostBatches(db, keys, len(keys), len(built.tags), "vgg", augment=None)
        images, _ = batches[0]
    finally:
        db.close()
    np.testing.assert_array_equal(images, expected_input(built, post_ids))


def test_the_feature_cache_is_filled_from_the_stored_pixels(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alti2v.model.network import build_model
    from alti2v.train.cache import FeatureCache

    model = build_model(len(built.tags), built.meta["image_size"], None, defaults.FREEZE)
    data = DataDir(tmp_path)  # the cache writes features/ here; the LevelDB is the fixture's
    db = open_db(built.data.db)
    try:
        cache = FeatureCache(data, db, model, defaults.FREEZE, "vgg")
        fed = []

        def frozen_head(images: np.ndarray) -> np.ndarray:
            fed.append(np.array(images))
            return np.zeros((len(images), *cache.shape), dtype=np.float32)

        monkeypatch.setattr(cache.head, "predict_on_batch", frozen_head)
        cache.prepare()
    finally:
        db.close()
    post_ids = [parse_record_key(key)[1] for split in SPLITS for key in cache.keys[split]]
    assert sorted(post_ids) == sorted(built.pixels)  # both splits: every record was fed
    np.testing.assert_array_equal(np.concatenate(fed), expected_input(built, post_ids))


def test_bench_quality_feeds_approach_3_the_stored_pixels(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alti2v.evaluate import baselines
    from bench.quality import approach3_scores, labelled_posts

    fed = []

    class Extractor:
        def predict(self, inputs: np.ndarray, verbose: int = 0) -> np.ndarray:
            fed.append(np.array(inputs))
            return inputs.reshape(len(inputs), -1)[:, :16]

    monkeypatch.setattr(baselines, "feature_extractor", lambda image_size, weights: Extractor())
    cache = tmp_path / "cache"  # bench.quality's image cache: train/ and heldout/
    cache.mkdir()
    for part in ("train", "heldout"):
        (cache / part).symlink_to(built.data.imgs)
    approach3_scores(cache, built.tags, "none")
    paths, _ = labelled_posts(cache / "train", built.tags)
    post_ids = [Path(path).stem for path in paths]
    assert len(fed) == 2  # the training posts, then the held-out ones: the same folder here
    for inputs in fed:
        np.testing.assert_array_equal(inputs, expected_input(built, post_ids))


def test_vgg_input_is_keras_preprocess_input_of_the_same_pixels(built: Built) -> None:
    import keras

    pixels = np.stack([built.pixels[built.post_ids[kind]] for kind in KINDS])
    expected = keras.applications.vgg16.preprocess_input(pixels.astype(np.float32))
    np.testing.assert_array_equal(to_model_input(pixels, "vgg"), expected)
    # BGR with ImageNet's means removed: the first channel is the blue one.
    np.testing.assert_array_equal(
        to_model_input(pixels, "vgg")[..., 0], pixels[..., 2].astype(np.float32) - 103.939
    )
