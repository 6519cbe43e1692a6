"""The start-up device line and bfloat16 mixed precision: compute in bfloat16, weights, the
sigmoid and so the loss in float32, predictions close to the float32 model's."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from alti2v.model.device import (
    accelerator_present,
    describe_device,
    mixed_precision_copy,
    use_mixed_precision,
)
from alti2v.model.network import build_model
from alti2v.train.epoch import drop_remainder


@pytest.fixture
def float32_afterwards():
    yield
    keras.config.set_dtype_policy("float32")


def test_device_line_names_backend_device_and_policy() -> None:
    line = describe_device()
    assert line.startswith(f"keras backend {keras.backend.backend()} on 1 cpu (")
    assert line.endswith("dtype policy float32")


def test_mixed_precision_model_keeps_weights_and_output_in_float32(float32_afterwards) -> None:
    use_mixed_precision()
    assert describe_device().endswith("dtype policy mixed_bfloat16")
    model = build_model(8, image_size=64, weights=None)
    assert model.layers[1].compute_dtype == "bfloat16"
    assert all(weight.dtype == "float32" for weight in model.weights)
    assert model.layers[-1].compute_dtype == "float32"  # the sigmoid, so the loss is float32
    images = np.zeros((2, 64, 64, 3), dtype=np.float32)
    assert model.predict_on_batch(images).dtype == np.float32


def test_mixed_precision_copy_predicts_like_the_float32_model() -> None:
    keras.utils.set_random_seed(0)
    model = build_model(8, image_size=64, weights=None)
    copy = mixed_precision_copy(model)
    assert [layer.compute_dtype for layer in copy.layers[1:-1]] == ["bfloat16"] * (
        len(copy.layers) - 2
    )
    assert copy.layers[-1].compute_dtype == "float32"
    for mine, theirs in zip(copy.weights, model.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), theirs.numpy())
    images = np.random.default_rng(0).uniform(-120, 140, (2, 64, 64, 3)).astype(np.float32)
    expected = model.predict_on_batch(images)
    actual = copy.predict_on_batch(images)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, atol=0.02)
    assert not np.array_equal(actual, expected)  # it did compute in bfloat16


def test_the_cpu_is_no_accelerator_so_training_keeps_the_short_last_batch() -> None:
    assert not accelerator_present()


def test_drop_remainder_keeps_whole_batches_of_the_order() -> None:
    order = [bytes([i]) for i in range(10)]
    assert drop_remainder(order, 4) == order[:8]
    assert drop_remainder(order, 5) == order  # already whole
    assert drop_remainder(order[:3], 4) == order[:3]  # less than a batch: nothing to drop
