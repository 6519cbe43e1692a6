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


class FusedAdamStep:
    """Adam's update of a variable as one kernel on TensorFlow (ResourceApplyAdam, the same
    formula as Keras' Adam): Keras writes it as a dozen element-wise ops, each a pass over the
    variable, and on a CPU TensorFlow compiles none of them together (Keras turns XLA off there).
    The 134M-weight last Dense of 4096 tags made that 450 ms of every step on the 2-core EPYC,
    240 ms fused (bench/step_profile.py). Other backends, and amsgrad, take Keras' own ops."""

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        step = keras.ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=keras.ops.power(keras.ops.cast(self.beta_1, dtype), step),
            beta2_power=keras.ops.power(keras.ops.cast(self.beta_2, dtype), step),
            lr=keras.ops.cast(learning_rate, dtype),
            beta1=keras.ops.cast(self.beta_1, dtype),
            beta2=keras.ops.cast(self.beta_2, dtype),
            epsilon=keras.ops.cast(self.epsilon, dtype),
            grad=keras.ops.cast(gradient, dtype),
        )


@keras.saving.register_keras_serializable(package="alti2v")
class FusedAdam(FusedAdamStep, keras.optimizers.Adam):
    """Keras' Adam, its update fused on TensorFlow."""


@keras.saving.register_keras_serializable(package="alti2v")
class TaggerAdamW(FusedAdamStep, keras.optimizers.Adam):
    """Adam with a rate for the VGG16 blocks, a head-only start and decoupled weight decay
    (Keras' optimizers all take one; AdamW is Adam with a non-zero default). No decay is None,
    not 0: Keras applies a zero decay anyway, a pass over every weight at each step."""

    def __init__(
        self,
        backbone_lr_scale: float = 1.0,
        head_steps: int = 0,
        weight_decay: float | None = None,
        **kwargs,
    ):
        super().__init__(weight_decay=weight_decay or None, **kwargs)
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
    """--train's optimizer: a linear warm-up to `learning_rate`, then `schedule`; Adam when
    nothing is scaled or decayed, else TaggerAdamW."""
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
        # Nothing to scale or decay: plain Adam, without TaggerAdamW's per-variable rate.
        return FusedAdam(rate)
    return TaggerAdamW(
        learning_rate=rate,
        backbone_lr_scale=backbone_lr_scale,
        head_steps=head_steps,
        weight_decay=weight_decay,
    )
