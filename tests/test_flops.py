"""bench/flops.py counts multiply-adds from the layers: exact on a small model, and VGG16 with
the 4096-tag head costs the 22.5 GFLOP per training image the README's utilisation figures use."""

from __future__ import annotations

import keras
import pytest

from alti2v.model.network import build_model
from bench.flops import model_flops


def test_flops_of_a_small_model_are_exact() -> None:
    inputs = keras.Input((8, 8, 2))
    frozen = keras.layers.Conv2D(4, 3, padding="same")
    features = frozen(inputs)
    outputs = keras.layers.Dense(5)(keras.layers.Flatten()(features))
    model = keras.Model(inputs, outputs)
    frozen.trainable = False
    conv = 2 * 8 * 8 * 3 * 3 * 2 * 4
    dense = 2 * 8 * 8 * 4 * 5
    assert model_flops(model) == {"predict": conv + dense, "train": conv + 3 * dense}


def test_the_model_costs_22_5_gflop_per_training_image() -> None:
    flops = model_flops(build_model(4096, weights=None))
    assert flops["train"] == pytest.approx(22.545e9, rel=1e-3)
    trainable_forward = (flops["train"] - flops["predict"]) / 2
    # The frozen block1_conv1..block4_conv1 is the 9.0 GFLOP that --cache-features saves.
    assert flops["predict"] - trainable_forward == pytest.approx(9.01e9, rel=1e-2)
