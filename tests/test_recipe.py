"""The training recipe's parts: augmentation, the layer-wise optimizer, the losses, flip
test-time augmentation and early stopping."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from alti2v.data.images import to_model_input
from alti2v.data.layout import DataDir
from alti2v.data.records import open_db, pack_record, record_key
from alti2v.model.losses import LOSSES, AsymmetricLoss
from alti2v.model.network import build_model, head_layers, set_output_prior, zero_output_kernel
from alti2v.model.optimizer import FusedAdam, TaggerAdamW
from alti2v.model.saved import LoadedModel
from alti2v.train.augment import Augmenter, parse_augment
from alti2v.train.batches import PostBatches
from alti2v.train.checkpoints import TrainState
from alti2v.train.config import TrainError
from alti2v.train.distribute import Cluster
from alti2v.train.loop import _patience_spent, _tag_frequencies


def images(count: int = 4, side: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(count, side, side, 3), dtype=np.uint8)


KEYS = [b"train/1", b"train/2", b"train/3", b"train/4"]


def test_parse_augment_orders_and_refuses() -> None:
    assert parse_augment("crop,flip") == ("flip", "crop")
    assert parse_augment("none") == ()
    with pytest.raises(ValueError, match="unknown hue"):
        parse_augment("flip,hue")


def test_augmentation_depends_only_on_seed_epoch_and_key() -> None:
    augment = Augmenter(("flip", "crop", "light"), seed=3)
    batch = images()
    first = augment(batch, KEYS, epoch=2)
    # The same posts in another batch order (another thread, a resumed epoch): the same pixels.
    reordered = augment(batch[::-1], KEYS[::-1], epoch=2)
    np.testing.assert_array_equal(first, reordered[::-1])
    assert not np.array_equal(first, augment(batch, KEYS, epoch=3))
    assert not np.array_equal(first, Augmenter(("flip", "crop", "light"), seed=4)(batch, KEYS, 2))
    assert first.shape == batch.shape and first.dtype == np.uint8


def test_each_process_augments_its_share_as_one_process_would(tmp_path: Path) -> None:
    # What --distribute relies on: a post's pixels do not depend on which process reads it.
    db = open_db(tmp_path / "db", create=True)
    keys = [record_key("train", str(number)) for number in range(8)]
    for key, pixels in zip(keys, images(8), strict=True):
        db.put(key, pack_record(pixels, [0]))
    augment = Augmenter(("flip", "crop", "light"), seed=5)

    def batch(cluster: Cluster | None) -> np.ndarray:
        share = cluster.local_share if cluster else None
        return PostBatches(db, keys, 8, 1, "raw", share, augment, epoch=1)[0][0]

    whole = batch(None)
    halves = [batch(Cluster(process_index=index, process_count=2)) for index in range(2)]
    db.close()
    np.testing.assert_array_equal(np.concatenate(halves), whole)
    assert not np.array_equal(whole, to_model_input(images(8), "raw"))


def test_flip_mirrors_about_half_of_the_images() -> None:
    batch = images(64)
    keys = [f"train/{number}".encode() for number in range(64)]
    flipped = Augmenter(("flip",), seed=0)(batch, keys, epoch=0)
    mirrored = [
        np.array_equal(out, image[:, ::-1]) for out, image in zip(flipped, batch, strict=True)
    ]
    kept = [np.array_equal(out, image) for out, image in zip(flipped, batch, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 16 < sum(mirrored) < 48


def test_light_keeps_each_pixels_colour_order() -> None:
    # Hair and eye colours are tags: brightness and contrast must not swap which channel leads.
    red_hair = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    red_hair[..., 0], red_hair[..., 1], red_hair[..., 2] = 200, 60, 40
    changed = Augmenter(("light",), seed=1)(red_hair, [b"train/1"], epoch=0)
    assert not np.array_equal(changed, red_hair)
    assert (changed[..., 0] > changed[..., 1]).all() and (changed[..., 1] > changed[..., 2]).all()


def two_layer_model() -> keras.Model:
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, name="block5_conv1")(inputs)
    outputs = keras.layers.Dense(2, name="dense")(hidden)
    return keras.Model(inputs, outputs)


def test_backbone_learns_at_its_fraction_of_the_heads_rate() -> None:
    keras.utils.set_random_seed(0)
    model = two_layer_model()
    model.compile(optimizer=TaggerAdamW(learning_rate=0.1, backbone_lr_scale=0.0), loss="mse")
    before = [variable.numpy().copy() for variable in model.trainable_variables]
    model.train_on_batch(np.ones((8, 4)), np.zeros((8, 2)))
    moved = {
        variable.path: not np.allclose(variable.numpy(), old)
        for variable, old in zip(model.trainable_variables, before, strict=True)
    }
    assert moved == {"block5_conv1/kernel": False, "block5_conv1/bias": False,
                     "dense/kernel": True, "dense/bias": True}  # fmt: skip


def test_unscaled_tagger_adamw_is_adam_and_the_fused_update_is_keras_adam() -> None:
    # So the recipe search's scaled runs differ from the defaults' Adam by their rates alone, and
    # the fused update computes Keras' Adam (up to the order of float32 operations).
    rng = np.random.default_rng(0)
    inputs, targets = rng.normal(size=(64, 4)), (rng.random((64, 2)) > 0.5).astype("float32")

    def trained(optimizer: keras.optimizers.Optimizer) -> list[np.ndarray]:
        keras.utils.set_random_seed(0)
        model = two_layer_model()
        model.compile(optimizer=optimizer, loss="mse")
        for step in range(20):
            batch = slice(step % 8 * 8, step % 8 * 8 + 8)
            model.train_on_batch(inputs[batch], targets[batch])
        return [variable.numpy() for variable in model.trainable_variables]

    adam, tagger = trained(FusedAdam(0.01)), trained(TaggerAdamW(learning_rate=0.01))
    for expected, actual in zip(adam, tagger, strict=True):
        np.testing.assert_array_equal(actual, expected)
    keras.utils.set_random_seed(0)  # the start trained() builds
    start = [variable.numpy() for variable in two_layer_model().trainable_variables]
    for keras_adam, fused, first in zip(trained(keras.optimizers.Adam(0.01)), adam, start,
                                        strict=True):  # fmt: skip
        assert not np.allclose(fused, first)  # it learned
        np.testing.assert_allclose(fused, keras_adam, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(trained(TaggerAdamW(learning_rate=0.01, backbone_lr_scale=0.5))[0],
                              adam[0])  # fmt: skip


def test_backbone_waits_for_the_head_steps() -> None:
    keras.utils.set_random_seed(0)
    model = two_layer_model()
    model.compile(optimizer=TaggerAdamW(learning_rate=0.1, head_steps=1), loss="mse")
    backbone = model.get_layer("block5_conv1").kernel
    before = backbone.numpy().copy()
    model.train_on_batch(np.ones((8, 4)), np.zeros((8, 2)))
    np.testing.assert_array_equal(backbone.numpy(), before)
    model.train_on_batch(np.ones((8, 4)), np.zeros((8, 2)))
    assert not np.allclose(backbone.numpy(), before)


def test_optimizer_and_loss_survive_a_saved_model(tmp_path: Path) -> None:
    model = two_layer_model()
    model.compile(
        optimizer=TaggerAdamW(
            learning_rate=0.01, backbone_lr_scale=0.25, head_steps=3, weight_decay=0.1
        ),
        loss=AsymmetricLoss(gamma_negative=2.0),
    )
    model.train_on_batch(np.ones((8, 4)), np.zeros((8, 2)))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert (loaded.optimizer.backbone_lr_scale, loaded.optimizer.head_steps) == (0.25, 3)
    assert float(loaded.optimizer.weight_decay) == pytest.approx(0.1)
    assert loaded.loss.gamma_negative == 2.0
    assert int(loaded.optimizer.iterations.numpy()) == 1


def test_asymmetric_loss_without_focusing_or_margin_is_cross_entropy() -> None:
    targets = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    probabilities = np.array([[0.9, 0.2, 0.6, 0.3]], dtype=np.float32)
    plain = AsymmetricLoss(gamma_negative=0.0, margin=0.0)(targets, probabilities)
    cross_entropy = LOSSES["bce"](0.0)(targets, probabilities)
    assert float(plain) == pytest.approx(float(cross_entropy), rel=1e-5)
    # Focusing and the margin make easy negatives (0.2) cost less: the loss falls.
    assert float(AsymmetricLoss()(targets, probabilities)) < float(plain)


def test_flip_tta_averages_the_image_and_its_mirror() -> None:
    inputs = keras.Input((2, 3, 1))
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    batch = np.arange(12, dtype=np.float32).reshape(2, 2, 3, 1)
    loaded = LoadedModel(model, ["tag"], {}, Path("."), tta="flip")
    plain = model.predict_on_batch(batch)
    mirrored = model.predict_on_batch(batch[:, :, ::-1].copy())
    np.testing.assert_allclose(loaded.predict(batch), (plain + mirrored) / 2, rtol=1e-6)


@pytest.mark.parametrize(
    ("maps", "patience", "spent"),
    [
        ([0.5, 0.6, 0.55, 0.58], 2, True),
        ([0.5, 0.6, 0.55, 0.58], 3, False),
        ([0.5, 0.6, 0.55, 0.61], 1, False),
        ([0.5, 0.4, 0.3], 0, False),  # 0 never stops
        ([float("nan")] * 4, 1, False),  # no eval split, nothing to watch
    ],
)
def test_patience(maps: list[float], patience: int, spent: bool) -> None:
    state = TrainState(config={}, vocab_hash="", num_tags=1, dataset={})
    state.history = [{"eval_map": value} for value in maps]
    assert _patience_spent(state, patience) is spent


def test_prior_bias_starts_each_tag_at_its_frequency(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    counts = {"1girl": 30, "solo": 10, "halo": 0, "everywhere": 40}
    data.vocab_meta.write_text(json.dumps({"num_posts_used": 40, "counts": counts}))
    frequencies = _tag_frequencies(data, list(counts))
    np.testing.assert_allclose(frequencies, [0.75, 0.25, 0.0, 1.0])
    model = build_model(len(counts), image_size=32, weights=None)
    set_output_prior(model, frequencies)
    bias = keras.ops.convert_to_numpy(model.layers[-3].bias)
    # A tag on no post or on every post gets a large but finite bias.
    np.testing.assert_allclose(1 / (1 + np.exp(-bias)), [0.75, 0.25, 1e-4, 1 - 1e-4], rtol=1e-5)


def test_zero_head_starts_at_the_bias_and_trains_the_last_layer_first() -> None:
    model = build_model(3, image_size=32, weights=None)
    zero_output_kernel(model)
    set_output_prior(model, np.array([0.5, 0.2, 0.9]))
    pixels = to_model_input(images(), "vgg")
    # Every image scores the prior alone.
    np.testing.assert_allclose(model.predict_on_batch(pixels), [[0.5, 0.2, 0.9]] * 4, rtol=1e-5)
    _, dense, last = head_layers(model)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    targets = np.eye(4, 3, dtype=np.float32)

    def weights(layer: keras.layers.Layer) -> np.ndarray:
        return keras.ops.convert_to_numpy(layer.kernel).copy()

    dense_before = weights(dense)
    model.train_on_batch(pixels, targets)
    # Through a zero kernel no gradient reaches the layers below: only the last one moved.
    assert np.abs(weights(last)).max() > 0
    np.testing.assert_array_equal(weights(dense), dense_before)
    model.train_on_batch(pixels, targets)
    assert not np.array_equal(weights(dense), dense_before)


def test_prior_bias_needs_the_counts_of_maeshori(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    data.vocab_meta.write_text(json.dumps({"num_posts_used": 4, "counts": {"solo": 2}}))
    with pytest.raises(TrainError, match="--bias-init zeros"):
        _tag_frequencies(data, ["solo", "halo"])
