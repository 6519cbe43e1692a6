"""Training losses on the model's sigmoid probabilities, picked by name (--loss).

- bce: binary cross-entropy, the original's, with optional label smoothing;
- asl: the asymmetric loss of Ridnik et al. (2021), made for multi-label sets where almost every
  tag is absent from almost every image: easy negatives are down-weighted by (p_m)^gamma and
  negatives scored under `margin` are ignored, so the rare positives carry the gradient.
"""

from __future__ import annotations

import keras
from keras import ops

EPSILON = 1e-7  # keeps log() finite at probabilities of exactly 0 or 1


@keras.saving.register_keras_serializable(package="alti2v")
class AsymmetricLoss(keras.losses.Loss):
    def __init__(self, gamma_negative: float = 4.0, margin: float = 0.05, name="asl", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma_negative = gamma_negative
        self.margin = margin

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        probability = ops.clip(y_pred, EPSILON, 1 - EPSILON)
        shifted = ops.maximum(probability - self.margin, 0.0)
        positive = y_true * ops.log(probability)
        negative = (1 - y_true) * ops.power(shifted, self.gamma_negative) * ops.log(1 - shifted)
        return -ops.mean(positive + negative, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "gamma_negative": self.gamma_negative,
                "margin": self.margin}  # fmt: skip


# name -> the loss for a --label-smoothing (which only bce uses; the CLI refuses it with asl)
LOSSES = {
    "bce": lambda smoothing: keras.losses.BinaryCrossentropy(label_smoothing=smoothing),
    "asl": lambda smoothing: AsymmetricLoss(),
}
