"""Floating-point operations of the model, counted from its layers, for utilisation figures.

A multiply-add is 2 FLOPs. Training one image costs the forward pass through every layer plus,
for each trainable layer, about twice its forward cost backwards (gradients of its weights and of
its input). Convolutions and dense layers only: pooling, BatchNormalization and activations add
well under 1%.
"""

from __future__ import annotations

import math

import keras


def forward_flops(layer: keras.layers.Layer) -> int:
    """FLOPs of one image through `layer` (0 for layers that do no multiply-adds)."""
    if isinstance(layer, keras.layers.Conv2D):
        height, width, channels_out = layer.output.shape[1:]
        kernel_height, kernel_width = layer.kernel_size
        channels_in = layer.input.shape[-1]
        return 2 * height * width * kernel_height * kernel_width * channels_in * channels_out
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(layer.input.shape[1:-1])  # Dense on a map applies at each position
        return 2 * positions * layer.input.shape[-1] * layer.units
    return 0


def model_flops(model: keras.Model) -> dict[str, int]:
    """FLOPs per image: `predict` (forward) and `train` (forward + backward of trainable layers)."""
    forward = sum(forward_flops(layer) for layer in model.layers)
    trainable = sum(forward_flops(layer) for layer in model.layers if layer.trainable_weights)
    return {"predict": forward, "train": forward + 2 * trainable}
