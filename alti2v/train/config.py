"""--train's settings (`TrainConfig`) and its error, shared by the loop and the epoch."""

from __future__ import annotations

from dataclasses import dataclass

from alti2v import defaults
from alti2v.errors import PipelineError


class TrainError(PipelineError):
    pass


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    learning_rate: float = defaults.LEARNING_RATE
    warmup_epochs: float = defaults.WARMUP_EPOCHS
    schedule: str = defaults.SCHEDULE
    freeze: int = defaults.FREEZE
    weights: str = defaults.WEIGHTS
    preprocess: str = defaults.PREPROCESS
    augment: str = defaults.AUGMENT
    dropout: float = defaults.DROPOUT
    weight_decay: float = defaults.WEIGHT_DECAY
    backbone_lr_scale: float = defaults.BACKBONE_LR_SCALE
    head_epochs: float = defaults.HEAD_EPOCHS
    loss: str = defaults.LOSS
    label_smoothing: float = defaults.LABEL_SMOOTHING
    bias_init: str = defaults.BIAS_INIT
    head_init: str = defaults.HEAD_INIT
    patience: int = defaults.PATIENCE
    seed: int = defaults.SEED
    checkpoint_minutes: float = defaults.CHECKPOINT_MINUTES
    image_size: int = defaults.IMAGE_SIZE  # taken from the dataset
    resize: str = defaults.RESIZE  # taken from the dataset
    cache_features: bool = False  # a speed choice, not the model's: a resume may change it
    precision: str = "float32"  # resolved ("auto" chosen); also a speed choice


def checkpoint_precision(config: dict) -> str:
    """The precision a checkpoint's config trained in (before --precision, --mixed-precision)."""
    return config.get("precision") or ("bfloat16" if config.get("mixed_precision") else "float32")


def unsupported(config: TrainConfig, distributed: bool, process_count: int) -> str | None:
    """Why --train cannot run these settings together, or None. The command line asks before
    any work (and before it starts the cluster), train() again before --fresh deletes anything."""
    if config.cache_features and distributed:
        return "--cache-features and --distribute together are not supported"
    if config.head_init == "linear-probe" and process_count > 1:
        # Each process would fit its own probe; replicas that differ in the last bits diverge.
        return (
            "--head-init linear-probe and several processes together are not supported; "
            "start with one process, or use --head-init zero"
        )
    return None


# The recipe of checkpoints written before these settings existed: a resume keeps training them
# as they started.
SEED_RECIPE = {
    "augment": "none", "dropout": 0.0, "weight_decay": 0.0, "backbone_lr_scale": 1.0,
    "head_epochs": 0.0, "loss": "bce", "label_smoothing": 0.0, "bias_init": "zeros",
    "head_init": "random", "patience": 0,
}  # fmt: skip
