"""One epoch of --train: shuffled batches through `fit()`, mid-epoch checkpoints, then the eval
split's loss, mAP and micro-F1, and the epoch's line of the log.
"""

from __future__ import annotations

import logging
import math
import time

import keras
import numpy as np

from alti2v.interrupt import StopOnCtrlC
from alti2v.model.losses import LOSSES
from alti2v.model.metrics import summarize
from alti2v.model.optimizer import make_optimizer
from alti2v.train.augment import Augmenter, parse_augment
from alti2v.train.batches import PostBatches, epoch_order
from alti2v.train.checkpoints import (
    TrainState,
    save_checkpoint,
)
from alti2v.train.config import TrainConfig
from alti2v.train.readers import ReaderProcesses

log = logging.getLogger(__name__)


class EpochTrainer:
    def __init__(
        self, db, model, config: TrainConfig, num_tags, checkpoints, progress, stop, cluster, cache,
        readers: int, drop_short_batch: bool, processes: ReaderProcesses | None = None,
    ):  # fmt: skip
        self.db, self.model, self.config = db, model, config
        self.num_tags, self.checkpoints, self.progress = num_tags, checkpoints, progress
        self.stop, self.cluster, self.cache = stop, cluster, cache
        # With cached features, fit() and predictions run the tail, whose layers are the model's.
        self.trainee = cache.tail if cache else model
        names = parse_augment(config.augment)
        self.augment = Augmenter(names, config.seed) if names else None
        self.readers, self.drop_short_batch = readers, drop_short_batch
        self.processes = processes

    def batches(self, keys: list[bytes], epoch: int | None = None) -> PostBatches:
        """Batches of `keys`; with `epoch`, training batches, augmented as that epoch's."""
        config, share = self.config, self.cluster.local_share
        if self.cache:
            return self.cache.batches(keys, config.batch_size, self.num_tags)
        augment = self.augment if epoch is not None else None
        return PostBatches(
            self.db, keys, config.batch_size, self.num_tags, config.preprocess, share,
            augment, epoch or 0, self.readers, self.processes,
        )  # fmt: skip

    def save_checkpoint(self, state: TrainState) -> None:
        self.cluster.on_first_process(save_checkpoint, self.checkpoints, self.model, state)

    def run_epoch(self, state: TrainState, train_keys: list[bytes], eval_keys: list[bytes]):
        config = self.config
        order = epoch_order(train_keys, config.seed, state.epoch)
        order = self.cluster.whole_batches(order, config.batch_size)
        if self.drop_short_batch:
            order = drop_remainder(order, config.batch_size)
        steps_per_epoch = math.ceil(len(order) / config.batch_size)
        if getattr(self.model, "optimizer", None) is None:  # a new model; resumed ones are compiled
            _compile(self.model, config, steps_per_epoch)
        if getattr(self.trainee, "optimizer", None) is None:
            # One optimizer for model and tail, so checkpoints hold its state.
            self.trainee.compile(optimizer=self.model.optimizer, loss=self.model.loss)
        with self.progress(
            total=steps_per_epoch, initial=state.step, unit="batch",
            desc=f"epoch {state.epoch + 1}/{config.epochs}",
        ) as progress:  # fmt: skip
            while state.step < steps_per_epoch:
                watch = BatchWatch(
                    progress, config.checkpoint_minutes * 60, self.stop, self.cluster
                )
                remaining = order[state.step * config.batch_size :]
                # shuffle=False: fit() would otherwise reorder the batches, and a stop for a
                # mid-epoch checkpoint would then not have trained the first `watch.batches`.
                self.trainee.fit(
                    self.batches(remaining, state.epoch),
                    epochs=1,
                    verbose=0,
                    shuffle=False,
                    callbacks=[watch],
                )
                state.step += watch.batches
                # Keras averages the loss over images, so weight each call by the images it saw.
                images_seen = min(watch.batches * config.batch_size, len(remaining))
                state.loss_sum += watch.mean_loss * images_seen
                state.train_seconds += watch.seconds
                if state.step < steps_per_epoch:  # stopped early to checkpoint
                    self.save_checkpoint(state)
                    if self.cluster.any_process(self.stop.requested):
                        return  # the caller stops; the epoch resumes from this checkpoint
        images_per_second = len(order) / max(state.train_seconds, 1e-9)
        row = {
            "epoch": state.epoch + 1,
            "train_loss": state.loss_sum / len(order),
            **{f"eval_{name}": value for name, value in self.evaluate(eval_keys).items()},
            "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "images_per_second": images_per_second,
            "seconds": state.train_seconds,
        }
        state.history.append(row)
        state.exported = None  # the weights changed: the next export is a new model
        state.epoch, state.step, state.loss_sum, state.train_seconds = state.epoch + 1, 0, 0.0, 0.0
        if not eval_keys or state.best_map is None or row["eval_map"] > state.best_map:
            state.best_map, state.best_checkpoint = row["eval_map"], state.name
        self.save_checkpoint(state)
        remaining_epochs = config.epochs - state.epoch
        log.info(
            "epoch %d/%d: train loss %.4f, %s, %.1f img/s, %s, ETA %s",
            state.epoch, config.epochs, row["train_loss"], eval_summary(row),
            images_per_second, duration(row["seconds"]),
            duration(remaining_epochs * len(train_keys) / images_per_second),
        )  # fmt: skip

    def evaluate(self, eval_keys: list[bytes]) -> dict[str, float]:
        if not eval_keys:
            return {"loss": float("nan"), "map": float("nan"), "micro_f1": float("nan")}
        # Padded to split over the devices; each process scores its share of every batch.
        batches = self.batches(self.cluster.padded(eval_keys, self.config.batch_size))
        scores, targets = [], []
        for index in self.progress(range(len(batches)), desc="evaluating", unit="batch"):
            images, batch_targets = batches[index]
            scores.append(self.cluster.gather(self.trainee.predict_on_batch(images)))
            targets.append(self.cluster.gather(batch_targets))
        count = len(eval_keys)  # the padding's scores are dropped
        return summarize(np.concatenate(scores)[:count], np.concatenate(targets)[:count])


def drop_remainder(order: list[bytes], batch_size: int) -> list[bytes]:
    """The epoch's order in whole batches only, for a GPU: there a short last batch stalled each
    epoch for 1 to 6 seconds (H100, bench/measured/gpu-last-batch-*.log), longer than the rest of
    a 3,256-image epoch. The posts left out are the permutation's last few, others each epoch;
    an order shorter than one batch is kept whole."""
    if len(order) < batch_size:
        return order
    return order[: len(order) - len(order) % batch_size]


def _compile(model: keras.Model, config: TrainConfig, steps_per_epoch: int) -> None:
    optimizer = make_optimizer(
        config.learning_rate, steps_per_epoch, config.epochs, config.warmup_epochs,
        config.schedule, config.backbone_lr_scale, config.head_epochs, config.weight_decay,
    )  # fmt: skip
    model.compile(optimizer=optimizer, loss=LOSSES[config.loss](config.label_smoothing))


class BatchWatch(keras.callbacks.Callback):
    """Feeds the progress bar and stops fit() when a mid-epoch checkpoint is due."""

    def __init__(self, progress, checkpoint_seconds: float, stop: StopOnCtrlC, cluster):
        super().__init__()
        self.progress = progress
        self.checkpoint_seconds = checkpoint_seconds
        self.stop = stop
        self.cluster = cluster
        self.batches = 0
        self.mean_loss = 0.0
        self.started = time.perf_counter()
        self.seconds = 0.0

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports the running mean of the loss over this fit() call.
        self.mean_loss = float(logs["loss"])
        self.batches = batch + 1
        self.seconds = time.perf_counter() - self.started
        self.progress.update()
        self.progress.set_postfix(loss=f"{self.mean_loss:.4f}", refresh=False)
        # Every process must stop after the same batch, whichever clock or Ctrl-C asked first.
        if self.cluster.any_process(self.seconds > self.checkpoint_seconds or self.stop.requested):
            self.model.stop_training = True


def eval_summary(row: dict) -> str:
    if math.isnan(row["eval_loss"]):
        return "no eval split"
    return (
        f"eval loss {row['eval_loss']:.4f}, eval mAP {row['eval_map']:.3f}, "
        f"micro-F1 {row['eval_micro_f1']:.3f}"
    )


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
