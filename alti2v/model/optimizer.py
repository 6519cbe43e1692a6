"""The training optimizer: Adam with decoupled weight decay (AdamW), and a learning rate for
the unfrozen VGG16 blocks that is a fraction of the new head's.

The head starts from random weights and must move far; the VGG16 blocks start from ImageNet and
need only adjusting, so `backbone_lr_scale` < 1 lets the head learn fast without tearing up
what the blocks already know, and for the first `head_steps` steps only the head learns (the
blocks never see the gradients of a random head). Registered with Keras, so checkpoints restore
it by name.
"""

from __future__ import annotations

import keras

# Learning rate at the end of training, as a fraction of the peak (--schedule).
SCHEDULE_FLOOR = {"constant": 1.0, "cosine": 0.0}
BACKBONE_PREFIX = "block"  # VGG16's layers are block1_conv1 ... block5_pool
NO_DECAY = ["bias", "gamma", "beta"]  # biases and BatchNormalization's scale and shift


@keras.saving.register_keras_serializable(package="alti2v")
class TaggerAdamW(keras.optimizers.AdamW):
    def __init__(
        self,
        backbone_lr_scale: float = 1.0,
        head_steps: int = 0,
        weight_decay: float = 0.0,
        **kwargs,
    ):
        super().__init__(weight_decay=weight_decay, **kwargs)
        self.backbone_lr_scale = backbone_lr_scale
        self.head_steps = head_steps
        self.exclude_from_weight_decay(var_names=NO_DECAY)

    def build(self, variables):
        super().build(variables)
        self._in_backbone = [variable.path.startswith(BACKBONE_PREFIX) for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        if self._in_backbone[self._get_variable_index(variable)]:
            moving = keras.ops.cast(self.iterations >= self.head_steps, learning_rate.dtype)
            learning_rate = learning_rate * self.backbone_lr_scale * moving
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "backbone_lr_scale": self.backbone_lr_scale,
            "head_steps": self.head_steps,
        }


def make_optimizer(
    learning_rate: float,
    steps_per_epoch: int,
    epochs: int,
    warmup_epochs: float = 0.0,
    schedule: str = "constant",
    backbone_lr_scale: float = 1.0,
    head_epochs: float = 0.0,
    weight_decay: float = 0.0,
) -> keras.optimizers.Optimizer:
    """--train's optimizer: a linear warm-up to `learning_rate`, then `schedule`; Keras' own
    Adam when nothing is scaled or decayed, else TaggerAdamW."""
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    total_steps = epochs * steps_per_epoch
    # CosineDecay with alpha=1 stays flat: one serializable schedule covers both choices, so a
    # checkpoint restores it without custom objects.
    rate = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        warmup_target=learning_rate,
        warmup_steps=warmup_steps,
        decay_steps=max(total_steps - warmup_steps, 1),
        alpha=SCHEDULE_FLOOR[schedule],
    )
    head_steps = round(head_epochs * steps_per_epoch)
    if backbone_lr_scale == 1 and not head_steps and not weight_decay:
        # Nothing to scale or decay: Keras' own Adam, whose compiled steps (JAX included) are
        # the ones --distribute is tested to reproduce; TaggerAdamW's extra ops change XLA's
        # fusion and so the last bits of each step.
        return keras.optimizers.Adam(rate)
    return TaggerAdamW(
        learning_rate=rate,
        backbone_lr_scale=backbone_lr_scale,
        head_steps=head_steps,
        weight_decay=weight_decay,
    )
