"""--cache-features: the tail over cached features is the model, the cache follows its data and
weights, a full disk is refused before any work, and training from the cache matches training
from pixels up to float16 rounding."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from alti2v.data.layout import DataDir
from alti2v.data.records import open_db, pack_record, record_key
from alti2v.model.network import build_model
from alti2v.train import cache as features
from alti2v.train.cache import FeatureCache, FeatureCacheError, split_head


def small_model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return build_model(8, image_size=64, weights=None)


def test_tail_of_the_frozen_head_is_the_whole_model() -> None:
    model = small_model()
    head, tail = split_head(model, freeze=12)
    images = np.random.default_rng(0).uniform(-120, 140, (2, 64, 64, 3)).astype(np.float32)
    assert head.output.shape[1:] == (8, 8, 512)  # block4_conv1 at 64 px
    np.testing.assert_array_equal(
        tail.predict_on_batch(head.predict_on_batch(images)), model.predict_on_batch(images)
    )
    # The tail trains the model's own variables: exactly its trainable ones.
    assert [weight.path for weight in tail.trainable_weights] == [
        weight.path for weight in model.trainable_weights
    ]
    assert not head.trainable_weights


def test_nothing_frozen_is_refused() -> None:
    with pytest.raises(FeatureCacheError, match="--freeze 0"):
        split_head(small_model(), freeze=0)


def test_fingerprint_follows_keys_and_frozen_weights() -> None:
    head, _ = split_head(small_model(), 12)
    other_head, _ = split_head(small_model(seed=1), 12)
    keys = {"train": [b"train/1", b"train/2"], "eval": [b"eval/3"]}
    fewer = {"train": [b"train/1"], "eval": [b"eval/3"]}
    meta = {"image_size": 64}
    base = features.fingerprint(meta, keys, head, "vgg")
    assert base == features.fingerprint(meta, keys, head, "vgg")
    assert base != features.fingerprint(meta, fewer, head, "vgg")
    assert base != features.fingerprint(meta, keys, other_head, "vgg")
    assert base != features.fingerprint(meta, keys, head, "raw")
    assert base != features.fingerprint({"image_size": 96}, keys, head, "vgg")


def test_a_damaged_meta_json_is_one_clear_error(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    db = open_db(data.db, create=True)
    try:
        pixels = np.zeros((64, 64, 3), dtype=np.uint8)
        db.put(record_key("train", "1"), pack_record(pixels, [0, 3]))
        db.put(record_key("eval", "2"), pack_record(pixels, [1]))
        cache = FeatureCache(data, db, small_model(), 12, "vgg")
        data.features.mkdir()
        data.features_meta.write_bytes(b'{"fingerprint": "12')  # cut short by a full disk
        with pytest.raises(FeatureCacheError) as caught:
            cache.prepare()
    finally:
        db.close()
    assert str(caught.value) == (
        f"{data.features_meta}: unreadable (Unterminated string starting at: line 1 column 17 "
        f"(char 16)); delete {data.features} to compute it again"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.slow
def test_cache_is_rebuilt_for_new_weights_and_refused_on_a_full_disk(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = DataDir(trained.copy_dataset(tmp_path / "data"))
    db = open_db(data.db)
    try:
        keras.utils.set_random_seed(0)
        first = FeatureCache(data, db, build_model(trained.vocab_size, weights=None), 12, "vgg")
        first.prepare()
        meta = json.loads((data.features / "meta.json").read_text())
        assert meta["filled"] == {"train": 22, "eval": 2}
        assert first.arrays["train"].shape == (22, 18, 18, 512)
        assert first.arrays["train"].dtype == np.float16
        kept = np.array(first.arrays["train"][0])

        keras.utils.set_random_seed(1)  # other frozen weights: the cache must not be reused
        second = FeatureCache(data, db, build_model(trained.vocab_size, weights=None), 12, "vgg")
        assert second.fingerprint != first.fingerprint
        second.prepare()
        assert json.loads((data.features / "meta.json").read_text())["fingerprint"] == (
            second.fingerprint
        )
        assert not np.array_equal(second.arrays["train"][0], kept)

        monkeypatch.setattr(features.shutil, "disk_usage", lambda path: _Usage(free=10**6))
        keras.utils.set_random_seed(2)
        third = FeatureCache(data, db, build_model(trained.vocab_size, weights=None), 12, "vgg")
        with pytest.raises(FeatureCacheError, match=r"needs 0\.01 GB .*\(324 KiB per image\)"):
            third.prepare()
    finally:
        db.close()


class _Usage:
    def __init__(self, free: int):
        self.free = free


def read_history(data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / "training" / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_training_from_cached_features_matches_training_from_pixels(
    trained, alt_i2v, tmp_path: Path
) -> None:
    data_dir = trained.copy_dataset(tmp_path / "data")
    # The cache holds the unchanged images' features, so both runs train without --augment.
    recipe = (*trained.train_flags, "--augment", "none")
    common = (*recipe, "--data-dir", data_dir, "--cache-features")
    first = alt_i2v("--train", "--epochs", 1, *common)
    assert "feature cache" in first.stderr and "324 KiB" in first.stderr
    cached_file = data_dir / "features" / "train.npy"
    written = cached_file.stat().st_mtime_ns
    alt_i2v("--train", "--epochs", trained.epochs, *common)  # resumes; the cache is reused
    assert cached_file.stat().st_mtime_ns == written

    # The same two epochs (same seed, same batches) from pixels. With float32 features the two
    # histories are identical to the bit; float16 rounding of the features moves these 8-tag,
    # batch-4 losses by up to about 2.5% after 12 steps.
    pixels_dir = trained.copy_dataset(tmp_path / "pixels")
    alt_i2v("--train", "--epochs", trained.epochs, *recipe, "--data-dir", pixels_dir)
    cached, pixels = read_history(data_dir), read_history(pixels_dir)
    assert len(cached) == len(pixels) == trained.epochs
    for mine, theirs in zip(cached, pixels, strict=True):
        for column in ("train_loss", "eval_loss", "eval_map"):
            assert float(mine[column]) == pytest.approx(float(theirs[column]), rel=0.05), column
    # Checkpoints and the export hold the whole model, images in, tags out.
    model_folder = max((data_dir / "models").iterdir())  # each run exported; the newest
    model = keras.models.load_model(model_folder / "model.keras")
    assert model.input_shape == (None, 150, 150, 3)
