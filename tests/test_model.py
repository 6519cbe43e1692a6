"""Tests for alti2v.model.network: the original's architecture (VGG16 base, BN, Dense(2048) at each
position, Flatten, Dense(num_tags), linear, sigmoid), the frozen layers, a forward pass, and the
parameter count of the full-size model. Random weights only: nothing is downloaded."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from alti2v.model.network import build_model

pytestmark = pytest.mark.slow

NUM_TAGS = 7
VGG16_LAYERS = [
    "image",
    "block1_conv1", "block1_conv2", "block1_pool",
    "block2_conv1", "block2_conv2", "block2_pool",
    "block3_conv1", "block3_conv2", "block3_conv3", "block3_pool",
    "block4_conv1", "block4_conv2", "block4_conv3", "block4_pool",
    "block5_conv1", "block5_conv2", "block5_conv3", "block5_pool",
]  # fmt: skip
# Parameters of the full-size model (4096 tags), part by part:
VGG16_NO_TOP_PARAMETERS = 14_714_688
BATCH_NORM_PARAMETERS = 4 * 512  # gamma, beta, moving mean and variance per channel
HIDDEN_DENSE_PARAMETERS = 512 * 2048 + 2048
OUTPUT_DENSE_PARAMETERS = 4 * 4 * 2048 * 4096 + 4096  # 134,221,824


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return build_model(num_tags=NUM_TAGS, weights=None)


def test_output_shape(model: keras.Model) -> None:
    assert model.input_shape == (None, 150, 150, 3)
    assert model.output_shape == (None, NUM_TAGS)


def test_layers_in_the_original_order(model: keras.Model) -> None:
    assert [layer.name for layer in model.layers[: len(VGG16_LAYERS)]] == VGG16_LAYERS
    head = model.layers[len(VGG16_LAYERS) :]
    assert [type(layer) for layer in head] == [
        keras.layers.BatchNormalization,
        keras.layers.Dense,
        keras.layers.Flatten,
        keras.layers.Dense,
        keras.layers.Activation,
        keras.layers.Activation,
    ]
    _, hidden, _, output, linear, sigmoid = head
    assert (hidden.units, hidden.activation) == (2048, keras.activations.relu)
    assert (output.units, output.activation) == (NUM_TAGS, keras.activations.linear)
    assert linear.activation == keras.activations.linear
    assert sigmoid.activation == keras.activations.sigmoid
    # The hidden Dense runs at each of the 4 x 4 positions of block5_pool, before Flatten.
    assert model.get_layer("block5_pool").output.shape == (None, 4, 4, 512)
    assert hidden.output.shape == (None, 4, 4, 2048)
    assert output.input.shape == (None, 4 * 4 * 2048)


def test_first_twelve_layers_are_frozen(model: keras.Model) -> None:
    assert model.layers[11].name == "block4_conv1"
    assert [layer.trainable for layer in model.layers[:12]] == [False] * 12
    assert all(layer.trainable for layer in model.layers[12:])
    frozen = {id(weight) for layer in model.layers[:12] for weight in layer.weights}
    assert frozen
    assert not frozen & {id(weight) for weight in model.trainable_weights}


def test_freeze_is_a_parameter() -> None:
    model = build_model(num_tags=3, weights=None, freeze=0)
    assert all(layer.trainable for layer in model.layers)


def test_forward_pass_gives_probabilities(model: keras.Model) -> None:
    images = np.random.default_rng(0).uniform(-128, 128, (2, 150, 150, 3)).astype(np.float32)
    scores = keras.ops.convert_to_numpy(model(images, training=False))
    assert scores.shape == (2, NUM_TAGS)
    assert not np.isnan(scores).any()
    assert ((scores >= 0) & (scores <= 1)).all()


def test_other_image_size() -> None:
    model = build_model(num_tags=2, image_size=64, weights=None)
    assert model.input_shape == (None, 64, 64, 3)
    assert model.output_shape == (None, 2)


def test_full_size_parameter_count() -> None:
    model = build_model(num_tags=4096, weights=None)
    assert model.layers[-3].count_params() == OUTPUT_DENSE_PARAMETERS == 134_221_824
    total = (
        VGG16_NO_TOP_PARAMETERS
        + BATCH_NORM_PARAMETERS
        + HIDDEN_DENSE_PARAMETERS
        + OUTPUT_DENSE_PARAMETERS
    )
    assert model.count_params() == total == 149_989_184
