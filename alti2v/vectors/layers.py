"""The layers --layer reads out of a model from --train, each a symbolic output of its Keras
graph: the tag logits (the `Dense(num_tags)` output before the sigmoid), the 2048-wide layer
mean-pooled over its 4x4 positions, and VGG16's `block5_pool` mean-pooled. Imported only for
such a model: a WD folder's vector is its embedding output, which needs no Keras
(alti2v.vectors.extract).

    forward, width = keras_readout(model, "dense")
    features, probabilities = forward(batch)   # one forward pass, the model's float input
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from alti2v.model.network import head_layers


def _logits(model: keras.Model):
    return head_layers(model)[2].output


def _pooled_dense(model: keras.Model):
    return keras.ops.mean(head_layers(model)[1].output, axis=(1, 2))


def _pooled_block5(model: keras.Model):
    return keras.ops.mean(model.get_layer("block5_pool").output, axis=(1, 2))


# The candidate layers by the names --layer accepts: each maps the model to a symbolic output.
LAYERS: dict[str, Callable[[keras.Model], object]] = {
    "logits": _logits,
    "dense": _pooled_dense,
    "block5": _pooled_block5,
}


def keras_readout(model: keras.Model, layer: str) -> tuple[Callable, int]:
    """A function of an input batch giving (`layer`'s features, the tag probabilities) in one
    forward pass of a sub-model built once, and the features' width."""
    readout = keras.Model(model.input, [LAYERS[layer](model), model.output])
    return readout.predict_on_batch, readout.output_shape[0][-1]
