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
from dataclasses import asdict, replace
from pathlib import Path

import keras
import numpy as np

from alti2v import defaults
from alti2v.data.files import atomic_write_text
from alti2v.data.layout import DataDir
from alti2v.data.records import contents_hash, open_db, read_meta, record_keys, sample_keys
from alti2v.data.vocabulary import built_with, load_vocabulary, load_vocabulary_meta
from alti2v.interrupt import StopOnCtrlC
from alti2v.model.device import accelerator_present
from alti2v.model.network import build_model, set_output_prior, zero_output_kernel
from alti2v.model.precision import at_precision, use_precision
from alti2v.model.saved import export_model
from alti2v.model.weights import check_weights, weights_sha256, with_vgg16_weights
from alti2v.progress import SILENT, Progress
from alti2v.train.augment import parse_augment
from alti2v.train.batches import PostBatches, RecordReader
from alti2v.train.cache import FeatureCache
from alti2v.train.checkpoints import (
    TrainState,
    latest_checkpoint,
    load_checkpoint_model,
    load_state,
    record_state,
    restore_seed_states,
)
from alti2v.train.config import (
    SEED_RECIPE,
    TrainConfig,
    TrainError,
    checkpoint_precision,
    unsupported,
)
from alti2v.train.distribute import ONE_DEVICE, Cluster
from alti2v.train.epoch import EpochTrainer
from alti2v.train.probe import apply_head_probe, fit_head_probe
from alti2v.train.readers import ReaderProcesses
from alti2v.train.resume import check_same_dataset, dataset_fingerprint, warn_ignored_flags

log = logging.getLogger(__name__)

HISTORY_COLUMNS = (
    "epoch", "train_loss", "eval_loss", "eval_map", "eval_micro_f1",
    "learning_rate", "images_per_second", "seconds",
)  # fmt: skip


def train(
    data: DataDir,
    config: TrainConfig,
    fresh: bool = False,
    progress: Progress = SILENT,
    given: frozenset[str] = frozenset(),
    cluster: Cluster = ONE_DEVICE,
    readers: int = defaults.READERS,
    reader_processes: int = defaults.READER_PROCESSES,
) -> Path | None:
    """Train (or resume) and export; return the exported model's folder (None but on process 0).
    `given` names the TrainConfig fields the user set explicitly: a resumed run says which of
    them it ignores. `readers` threads prefetch the batches (0: one per core, at most 16),
    handing them to `reader_processes` worker processes to make (0: the threads make them).
    Combinations it cannot run are refused first, before --fresh deletes anything."""
    refusal = unsupported(config, cluster is not ONE_DEVICE, cluster.process_count)
    if refusal:
        raise TrainError(refusal)
    cluster.check_batch_size(config.batch_size)
    tags = load_vocabulary(data.vocab)
    # model.json carries each tag's category, so --pred and --eval need no data directory.
    vocab_meta = load_vocabulary_meta(data.vocab_meta)
    # Each tag's training count too: --export writes them into the WD layout's CSV.
    counts = vocab_meta.get("counts", {})
    tag_info = {"categories": vocab_meta.get("categories", {}),
                "counts": {tag: counts[tag] for tag in tags if tag in counts}}  # fmt: skip
    checkpoints = data.checkpoints
    # The reader closes the database once the prefetch threads are done with it.
    reader = RecordReader(open_db(data.db))
    try:
        db = reader.db
        meta = read_meta(db, data.db) or {}
        if not built_with(meta, tags):
            raise TrainError(f"{data.db} was built with another vocabulary; run --build again")
        if not meta.get("complete", True):
            raise TrainError(f"{data.db}: its last --build did not finish; run --build again")
        config = replace(config, image_size=meta["image_size"], resize=meta["resize"])
        train_keys, eval_keys = record_keys(db, "train"), record_keys(db, "eval")
        if not train_keys:
            raise TrainError(f"{data.db} has no training images; add posts and run --build")
        if fresh or latest_checkpoint(checkpoints) is None:
            # What a new run needs, refused before --fresh deletes anything.
            check_weights(config.weights, TrainError)
            if config.bias_init == "prior":
                _tag_frequencies(data, tags)
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
            _init_head_from_probe(model, reader, train_keys, config, len(tags), progress)
        cache = None
        if config.cache_features:
            if config.augment != "none":
                log.warning(
                    "--cache-features: trained without --augment %s (the cache holds the "
                    "frozen layers' output for the unchanged images)",
                    config.augment,
                )
                config = replace(config, augment="none")
                state.config = asdict(config)
            cache = FeatureCache(data, db, model, config.freeze, config.preprocess)
            cache.prepare(progress)
        workers = _reader_processes(reader_processes, config, meta, len(tags), cache)
        with StopOnCtrlC("stopping after this batch, with a checkpoint") as stop, workers as pool:
            trainer = EpochTrainer(
                reader, model, config, len(tags), checkpoints, progress, stop, cluster, cache,
                readers=readers or min(os.cpu_count() or 1, defaults.MAX_READERS),
                processes=pool,
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
                cluster.on_first_process(_write_history, data.history, state.history)
                if cluster.any_process(stop.requested):  # a checkpoint holds all done so far
                    raise KeyboardInterrupt
    finally:
        reader.close()
    return cluster.on_first_process(_export, data, checkpoints, model, state, tags, tag_info)


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
        model = at_precision(_build(len(tags), config), config.precision)
        if config.head_init == "zero":
            zero_output_kernel(model)
        if config.bias_init == "prior":
            set_output_prior(model, _tag_frequencies(data, tags))
        state = TrainState(
            config=asdict(config), vocab_hash=vocab_hash, num_tags=len(tags), dataset=fingerprint,
            weights_sha256=weights_sha256(config.weights),
        )  # fmt: skip
        return model, state, config
    state = load_state(checkpoint)
    if state.vocab_hash != vocab_hash:
        raise TrainError(
            f"{checkpoint}: trained on another vocabulary ({state.num_tags} tags) than "
            f"vocab.txt ({len(tags)} tags); restore that vocabulary or train with --fresh"
        )
    # Architecture, optimizer and schedule come from the checkpoint; only --epochs and the
    # speed choices may change.
    trained_in = checkpoint_precision(state.config)
    kept = {name: value for name, value in state.config.items() if name != "mixed_precision"}
    # --precision auto goes on in the checkpoint's precision: auto's measurement on a CPU with
    # AVX512-BF16 can fall either side of its bar on a loaded machine, and a run should not
    # change precision by chance. A --precision given on the command line still applies.
    precision = config.precision if "precision" in given else trained_in
    if precision != config.precision:
        use_precision(precision)
    resumed = replace(
        TrainConfig(**{**SEED_RECIPE, **kept}),
        epochs=config.epochs,
        cache_features=config.cache_features,
        precision=precision,
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
    if trained_in != resumed.precision:
        log.info("resuming in %s a run trained so far in %s", resumed.precision, trained_in)
    model = at_precision(load_checkpoint_model(checkpoint), resumed.precision)
    restore_seed_states(model, state)
    return model, state, resumed


def _reader_processes(
    count: int, config: TrainConfig, meta: dict, num_tags: int, cache: FeatureCache | None
) -> contextlib.AbstractContextManager[ReaderProcesses | None]:
    """The worker processes that make the batches, or None where the prefetch threads do."""
    if cache is not None or count == 0:  # cached features are read from their own file
        return contextlib.nullcontext()
    log.info("train: %d reader processes make the batches", count)
    return ReaderProcesses(
        count, config.batch_size, meta["image_size"], num_tags, config.preprocess,
        parse_augment(config.augment), config.seed,
    )  # fmt: skip


def _init_head_from_probe(
    model, reader, train_keys: list[bytes], config: TrainConfig, num_tags: int, progress
) -> None:
    keys = sample_keys(train_keys, defaults.PROBE_MAX, config.seed)
    log.info("--head-init linear-probe: fitting %d logistic regressions on %d posts",
             num_tags, len(keys))  # fmt: skip
    batches = PostBatches(reader, keys, PROBE_BATCH, num_tags, config.preprocess)
    apply_head_probe(model, fit_head_probe(model, batches, progress))


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


def _patience_spent(state: TrainState, patience: int) -> bool:
    """True once `patience` epochs in a row have not beaten the best eval mAP (never without
    an eval split, whose mAP is NaN)."""
    scores = [row["eval_map"] for row in state.history]
    if not patience or not scores or math.isnan(scores[-1]):
        return False
    best_epoch = scores.index(max(scores))
    return len(scores) - 1 - best_epoch >= patience


PROBE_BATCH = 32  # posts per forward pass while the linear probe's features are computed


def _write_history(path: Path, history: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


def _export(
    data: DataDir, checkpoints: Path, model, state: TrainState, tags, tag_info: dict
) -> Path:
    if state.exported and (data.models / state.exported).is_dir():
        log.info("the model of this run is already exported: %s", data.models / state.exported)
        return data.models / state.exported
    best = checkpoints / state.best_checkpoint if state.best_checkpoint else None
    source = load_checkpoint_model(best, compile=False) if best and best.is_dir() else model
    best_row = next(
        (row for row in state.history if row["eval_map"] == state.best_map), state.history[-1]
    )
    # "weights" (in the config) names what it started from; a file's hash tells it again.
    started_from = {"weights_sha256": state.weights_sha256} if state.weights_sha256 else {}
    info = {**state.config, "metrics": best_row, **tag_info, **started_from}
    folder = export_model(data.models, source, tags, info)
    state.exported = folder.name
    record_state(latest_checkpoint(checkpoints), state)
    return folder
