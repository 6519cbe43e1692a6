"""The network of alternative illustration2vec, exactly as the 2017 original built it.

VGG16 without its classifier sees a 150x150x3 image and gives a 4x4x512 map. The new head is
BatchNormalization, Dense(2048, relu) applied at each of the 16 positions, Flatten, and
Dense(num_tags) followed by linear and sigmoid activations. The first `freeze` layers of the
model (input through block4_conv1 for 12) keep their weights. `dropout` > 0 adds a Dropout
before the last Dense, where the original's second version (alt_i2v_V2.py) put one; it acts
only in training, so the network that tags is the same.
"""

from __future__ import annotations

import keras
import numpy as np


def build_model(
    num_tags: int,
    image_size: int = 150,
    weights: str | None = "imagenet",
    freeze: int = 12,
    dropout: float = 0.0,
) -> keras.Model:
    """`weights` is "imagenet", None (random) or a path to VGG16 no-top `.weights.h5`."""
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    vgg = keras.applications.VGG16(include_top=False, weights=weights, input_tensor=inputs)
    features = keras.layers.BatchNormalization()(vgg.output)
    features = keras.layers.Dense(2048, activation="relu")(features)
    features = keras.layers.Flatten()(features)
    if dropout:
        features = keras.layers.Dropout(dropout)(features)
    # Under bfloat16 the last Dense and what follows it stay float32 (OUTPUT_LAYERS): the loss
    # sees float32 probabilities, the logits --vec reads keep float32's resolution (bfloat16's
    # 8-bit mantissa moved near-duplicate similarities by 1e-3), and the 134M weights of a
    # 4096-tag layer are not cast to bfloat16 at every step.
    logits = keras.layers.Dense(num_tags, dtype="float32")(features)
    # The original's Activation("linear") before the sigmoid does nothing; kept for fidelity.
    linear = keras.layers.Activation("linear", dtype="float32")(logits)
    outputs = keras.layers.Activation("sigmoid", dtype="float32")(linear)
    model = keras.Model(inputs, outputs, name="alt_i2v")
    for layer in model.layers[:freeze]:
        layer.trainable = False
    return model


# The last Dense, the linear and the sigmoid: the layers that compute in float32 whatever the
# precision of the rest.
OUTPUT_LAYERS = 3


def head_layers(model: keras.Model) -> tuple[keras.layers.Layer, ...]:
    """The new head of a `build_model` network: (BatchNormalization, Dense(2048), last Dense)."""
    norm = next(
        layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    return norm, dense[0], dense[-1]


def zero_output_kernel(model: keras.Model) -> None:
    """Start the last Dense's kernel at zero, as Big Transfer starts its heads: every image then
    scores the bias alone, and the first steps teach the last layer to read the features before
    any gradient reaches the layers below through random weights."""
    _, _, last = head_layers(model)
    last.kernel.assign(np.zeros(last.kernel.shape, dtype=last.kernel.dtype))


def set_output_prior(model: keras.Model, frequencies: np.ndarray) -> None:
    """Start each tag's logit at the log-odds of its frequency, so the untrained network already
    predicts the base rates and the first steps' gradients do not go to learning them."""
    _, _, last = head_layers(model)
    last.bias.assign(log_odds(frequencies).astype(last.bias.dtype))


def log_odds(frequencies: np.ndarray) -> np.ndarray:
    """The logit that scores each frequency, clipped to [1e-4, 1 - 1e-4] first so that a tag
    on every (or no) post gets a finite one."""
    p = np.clip(frequencies, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))
