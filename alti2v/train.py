"""--train: fit the model on the LevelDB dataset, evaluating, checkpointing and resuming.

Each epoch streams shuffled batches through `fit()`, then scores the eval split (loss, mAP,
micro-F1), writes a checkpoint and rewrites `training/history.csv`. Running --train again
continues from the newest checkpoint; the final model is exported with its vocabulary to
`models/<time>/`, from the checkpoint with the best eval mAP.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from alti2v import defaults
from alti2v.augment import Augmenter, parse_augment
from alti2v.batches import PostBatches, RecordReader, epoch_order, sample_keys
from alti2v.checkpoints import (
    TrainState,
    latest_checkpoint,
    load_checkpoint_model,
    load_state,
    record_state,
    restore_seed_states,
    save_checkpoint,
)
from alti2v.device import accelerator_present
from alti2v.distribute import ONE_DEVICE, Cluster
from alti2v.errors import PipelineError
from alti2v.features import FeatureCache
from alti2v.interrupt import StopOnCtrlC
from alti2v.layout import DataDir, atomic_write_text
from alti2v.losses import LOSSES
from alti2v.metrics import summarize
from alti2v.model import build_model, set_output_prior, zero_output_kernel
from alti2v.models import export_model
from alti2v.optimizer import TaggerAdamW
from alti2v.probe import apply_head_probe, fit_head_probe
from alti2v.resume import check_same_dataset, dataset_fingerprint, warn_ignored_flags
from alti2v.store import contents_hash, open_db, read_meta, record_keys
from alti2v.vocabulary import load_vocabulary, load_vocabulary_meta, vocabulary_hash
from alti2v.weights import with_vgg16_weights

log = logging.getLogger(__name__)

HISTORY_COLUMNS = (
    "epoch", "train_loss", "eval_loss", "eval_map", "eval_micro_f1",
    "learning_rate", "images_per_second", "seconds",
)  # fmt: skip


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
    mixed_precision: bool = False


# The recipe of checkpoints written before these settings existed: a resume keeps training them
# as they started.
SEED_RECIPE = {
    "augment": "none", "dropout": 0.0, "weight_decay": 0.0, "backbone_lr_scale": 1.0,
    "head_epochs": 0.0, "loss": "bce", "label_smoothing": 0.0, "bias_init": "zeros",
    "head_init": "random", "patience": 0,
}  # fmt: skip


def train(
    data: DataDir,
    config: TrainConfig,
    fresh: bool = False,
    quiet: bool = False,
    given: frozenset[str] = frozenset(),
    cluster: Cluster = ONE_DEVICE,
    readers: int = defaults.READERS,
) -> Path | None:
    """Train (or resume) and export; return the exported model's folder (None but on process 0).
    `given` names the TrainConfig fields the user set explicitly: a resumed run says which of
    them it ignores. `readers` threads prefetch the batches (0: one per core, at most 16)."""
    cluster.check_batch_size(config.batch_size)
    tags = load_vocabulary(data.vocab)
    vocab_hash = vocabulary_hash(tags)
    # model.json carries each tag's category, so --pred and --eval need no data directory.
    categories = load_vocabulary_meta(data.vocab_meta).get("categories", {})
    checkpoints = data.training / "checkpoints"
    # The reader closes the database once the prefetch threads are done with it.
    reader = RecordReader(open_db(data.db))
    try:
        db = reader.db
        meta = read_meta(db, data.db) or {}
        if meta.get("vocab_hash") != vocab_hash:
            raise TrainError(f"{data.db} was built with another vocabulary; run --build again")
        if not meta.get("complete", True):
            raise TrainError(f"{data.db}: its last --build did not finish; run --build again")
        config = replace(config, image_size=meta["image_size"], resize=meta["resize"])
        train_keys, eval_keys = record_keys(db, "train"), record_keys(db, "eval")
        if not train_keys:
            raise TrainError(f"{data.db} has no training images; add posts and run --build")
        if fresh and checkpoints.exists():
            log.info("--fresh: removing the checkpoints in %s", checkpoints)
            # Every machine removes its own copy; a shared folder, whoever comes first.
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(checkpoints)
        cluster.wait_for_all("fresh")
        cluster.check_same_checkpoint(checkpoints, latest_checkpoint(checkpoints))
        contents = contents_hash(db)
        fingerprint = dataset_fingerprint(meta, train_keys, eval_keys, contents, config.preprocess)
        model, state, config = _start_or_resume(checkpoints, config, tags, fingerprint, given, data)
        if config.head_init == "linear-probe" and not state.history and not state.step:
            # A new run: checkpoints come after a step (one saved at step 0, by a Ctrl-C before
            # the first batch, holds the same start, which this computes again to the bit).
            _init_head_from_probe(model, reader, train_keys, config, len(tags), cluster, quiet)
        cache = None
        if config.cache_features:
            if cluster is not ONE_DEVICE:
                raise TrainError("--cache-features and --distribute together are not supported")
            if config.augment != "none":
                log.warning(
                    "--cache-features: trained without --augment %s (the cache holds the "
                    "frozen layers' output for the unchanged images)",
                    config.augment,
                )
                config = replace(config, augment="none")
                state.config = asdict(config)
            cache = FeatureCache(data, db, model, config.freeze, config.preprocess)
            cache.prepare(quiet)
        with StopOnCtrlC("stopping after this batch, with a checkpoint") as stop:
            trainer = _EpochTrainer(
                reader, model, config, len(tags), checkpoints, quiet, stop, cluster, cache,
                readers=readers or min(os.cpu_count() or 1, defaults.MAX_READERS),
                drop_short_batch=accelerator_present(),
            )  # fmt: skip
            if config.patience and not eval_keys:
                log.warning("--patience: no eval split to watch; training all %d epochs",
                            config.epochs)  # fmt: skip
            while state.epoch < config.epochs:
                if _patience_spent(state, config.patience):
                    log.info(
                        "stopping early: eval mAP has not improved for %d epochs; the best, "
                        "%.3f, is exported", config.patience, state.best_map,
                    )  # fmt: skip
                    break
                trainer.run_epoch(state, train_keys, eval_keys)
                cluster.on_first_process(
                    _write_history, data.training / "history.csv", state.history
                )
                if cluster.any_process(stop.requested):  # a checkpoint holds all done so far
                    raise KeyboardInterrupt
    finally:
        reader.close()
    return cluster.on_first_process(_export, data, checkpoints, model, state, tags, categories)


def _start_or_resume(
    checkpoints: Path,
    config: TrainConfig,
    tags: list[str],
    fingerprint: dict,
    given: frozenset,
    data: DataDir,
) -> tuple[keras.Model, TrainState, TrainConfig]:
    vocab_hash = fingerprint["vocab_hash"]
    checkpoint = latest_checkpoint(checkpoints)
    if checkpoint is None:
        log.info("starting a new run: %d tags, weights %s", len(tags), config.weights)
        keras.utils.set_random_seed(config.seed)
        model = _build(len(tags), config)
        if config.head_init == "zero":
            zero_output_kernel(model)
        if config.bias_init == "prior":
            set_output_prior(model, _tag_frequencies(data, tags))
        state = TrainState(
            config=asdict(config), vocab_hash=vocab_hash, num_tags=len(tags), dataset=fingerprint
        )
        return model, state, config
    state = load_state(checkpoint)
    if state.vocab_hash != vocab_hash:
        raise TrainError(
            f"{checkpoint}: trained on another vocabulary ({state.num_tags} tags) than "
            f"vocab.txt ({len(tags)} tags); restore that vocabulary or train with --fresh"
        )
    # Architecture, optimizer and schedule come from the checkpoint; only --epochs may change.
    resumed = replace(
        TrainConfig(**{**SEED_RECIPE, **state.config}),
        epochs=config.epochs,
        cache_features=config.cache_features,
    )
    current = {**fingerprint, "preprocess": resumed.preprocess}
    state.dataset = check_same_dataset(checkpoint, state.dataset, current)
    warn_ignored_flags(checkpoint, config, resumed, given)
    if resumed.schedule == "cosine" and state.config["epochs"] != resumed.epochs:
        log.warning(
            "the cosine schedule of %s decays over its first %d epochs; past them the "
            "learning rate stays at 0 (train with --fresh to plan %d)",
            checkpoint, state.config["epochs"], resumed.epochs,
        )  # fmt: skip
    state.config = asdict(resumed)  # so checkpoints and model.json record the new --epochs
    log.info(
        "resuming from %s: %d of %d epochs done, batch %d of the next",
        checkpoint, state.epoch, resumed.epochs, state.step,
    )  # fmt: skip
    model = load_checkpoint_model(checkpoint)
    restore_seed_states(model, state)
    return model, state, resumed


def _init_head_from_probe(
    model, reader, train_keys: list[bytes], config: TrainConfig, num_tags: int, cluster, quiet
) -> None:
    if cluster.process_count > 1:
        # Each process would fit its own probe; replicas that differ in the last bits diverge.
        raise TrainError(
            "--head-init linear-probe and several processes together are not supported; "
            "start with one process, or use --head-init zero"
        )
    keys = sample_keys(train_keys, defaults.BASELINE_MAX, config.seed)
    log.info("--head-init linear-probe: fitting %d logistic regressions on %d posts",
             num_tags, len(keys))  # fmt: skip
    batches = PostBatches(reader, keys, PROBE_BATCH, num_tags, config.preprocess)
    apply_head_probe(model, fit_head_probe(model, batches, quiet))


def _tag_frequencies(data: DataDir, tags: list[str]) -> np.ndarray:
    """Each tag's share of the posts --maeshori counted (eval split included: a base rate per
    tag is all it gives away)."""
    meta = load_vocabulary_meta(data.vocab_meta)
    counts, posts = meta.get("counts", {}), meta.get("num_posts_used")
    if not posts or any(tag not in counts for tag in tags):
        raise TrainError(f"{data.vocab_meta} has no tag counts; run --maeshori again, or train "
                         "with --bias-init zeros")  # fmt: skip
    return np.array([counts[tag] / posts for tag in tags])


def _build(num_tags: int, config: TrainConfig) -> keras.Model:
    def build(weights: str | None) -> keras.Model:
        return build_model(num_tags, config.image_size, weights, config.freeze, config.dropout)

    return with_vgg16_weights(build, config.weights, TrainError)


class _EpochTrainer:
    def __init__(
        self, db, model, config: TrainConfig, num_tags, checkpoints, quiet, stop, cluster, cache,
        readers: int, drop_short_batch: bool,
    ):  # fmt: skip
        self.db, self.model, self.config = db, model, config
        self.num_tags, self.checkpoints, self.quiet = num_tags, checkpoints, quiet
        self.stop, self.cluster, self.cache = stop, cluster, cache
        # With cached features, fit() and predictions run the tail, whose layers are the model's.
        self.trainee = cache.tail if cache else model
        names = parse_augment(config.augment)
        self.augment = Augmenter(names, config.seed) if names else None
        self.readers, self.drop_short_batch = readers, drop_short_batch

    def batches(self, keys: list[bytes], epoch: int | None = None) -> PostBatches:
        """Batches of `keys`; with `epoch`, training batches, augmented as that epoch's."""
        config, share = self.config, self.cluster.local_share
        if self.cache:
            return self.cache.batches(keys, config.batch_size, self.num_tags)
        augment = self.augment if epoch is not None else None
        return PostBatches(
            self.db, keys, config.batch_size, self.num_tags, config.preprocess, share,
            augment, epoch or 0, self.readers,
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
        with tqdm(
            total=steps_per_epoch, initial=state.step, unit="batch", disable=self.quiet,
            desc=f"epoch {state.epoch + 1}/{config.epochs}",
        ) as progress:  # fmt: skip
            while state.step < steps_per_epoch:
                watch = _BatchWatch(
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
            state.epoch, config.epochs, row["train_loss"], _eval_summary(row),
            images_per_second, _duration(row["seconds"]),
            _duration(remaining_epochs * len(train_keys) / images_per_second),
        )  # fmt: skip

    def evaluate(self, eval_keys: list[bytes]) -> dict[str, float]:
        if not eval_keys:
            return {"loss": float("nan"), "map": float("nan"), "micro_f1": float("nan")}
        # Padded to split over the devices; each process scores its share of every batch.
        batches = self.batches(self.cluster.padded(eval_keys, self.config.batch_size))
        scores, targets = [], []
        for index in tqdm(range(len(batches)), desc="evaluating", unit="batch", disable=self.quiet):
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
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    total_steps = config.epochs * steps_per_epoch
    # CosineDecay with alpha=1 stays flat: one serializable schedule covers both choices, so a
    # checkpoint restores it without custom objects.
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        warmup_target=config.learning_rate,
        warmup_steps=warmup_steps,
        decay_steps=max(total_steps - warmup_steps, 1),
        alpha=SCHEDULE_FLOOR[config.schedule],
    )
    head_steps = round(config.head_epochs * steps_per_epoch)
    if config.backbone_lr_scale == 1 and not head_steps and not config.weight_decay:
        # Nothing to scale or decay: Keras' own Adam, whose compiled steps (JAX included) are
        # the ones --distribute is tested to reproduce; TaggerAdamW's extra ops change XLA's
        # fusion and so the last bits of each step.
        optimizer = keras.optimizers.Adam(schedule)
    else:
        optimizer = TaggerAdamW(
            learning_rate=schedule,
            backbone_lr_scale=config.backbone_lr_scale,
            head_steps=head_steps,
            weight_decay=config.weight_decay,
        )
    model.compile(optimizer=optimizer, loss=LOSSES[config.loss](config.label_smoothing))


def _patience_spent(state: TrainState, patience: int) -> bool:
    """True once `patience` epochs in a row have not beaten the best eval mAP (never without
    an eval split, whose mAP is NaN)."""
    scores = [row["eval_map"] for row in state.history]
    if not patience or not scores or math.isnan(scores[-1]):
        return False
    best_epoch = scores.index(max(scores))
    return len(scores) - 1 - best_epoch >= patience


PROBE_BATCH = 32  # posts per forward pass while the linear probe's features are computed
# Learning rate at the end of training, as a fraction of --learning-rate.
SCHEDULE_FLOOR = {"constant": 1.0, "cosine": 0.0}


class _BatchWatch(keras.callbacks.Callback):
    """Feeds the progress bar and stops fit() when a mid-epoch checkpoint is due."""

    def __init__(self, progress: tqdm, checkpoint_seconds: float, stop: StopOnCtrlC, cluster):
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


def _write_history(path: Path, history: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


def _export(
    data: DataDir, checkpoints: Path, model, state: TrainState, tags, categories: dict
) -> Path:
    if state.exported and (data.models / state.exported).is_dir():
        log.info("the model of this run is already exported: %s", data.models / state.exported)
        return data.models / state.exported
    best = checkpoints / state.best_checkpoint if state.best_checkpoint else None
    source = load_checkpoint_model(best, compile=False) if best and best.is_dir() else model
    best_row = next(
        (row for row in state.history if row["eval_map"] == state.best_map), state.history[-1]
    )
    info = {**state.config, "metrics": best_row, "categories": categories}
    folder = export_model(data.models, source, tags, info)
    state.exported = folder.name
    record_state(latest_checkpoint(checkpoints), state)
    return folder


def _eval_summary(row: dict) -> str:
    if math.isnan(row["eval_loss"]):
        return "no eval split"
    return (
        f"eval loss {row['eval_loss']:.4f}, eval mAP {row['eval_map']:.3f}, "
        f"micro-F1 {row['eval_micro_f1']:.3f}"
    )


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
