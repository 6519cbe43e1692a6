"""The training recipe's parts: augmentation, the layer-wise optimizer, the losses, flip
test-time augmentation and early stopping."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from alti2v.augment import Augmenter, parse_augment
from alti2v.checkpoints import TrainState
from alti2v.losses import LOSSES, AsymmetricLoss
from alti2v.models import LoadedModel
from alti2v.optimizer import TaggerAdamW
from alti2v.train import _patience_spent


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
