"""--cache-features: compute the frozen layers' output once per image and train the rest from it.

The first `--freeze` layers never change, yet every epoch recomputes them (block1_conv1 through
block4_conv1: about 9 of the 22 GFLOP a training image costs at 150 px). With the cache, their
output (18x18x512 at 150 px) is computed once per record, stored as float16 in one memory-mapped
`.npy` per split under `features/` (read faster than the same bytes from LevelDB:
bench/feature_store.py), and the trainable tail is trained on it. VGG16 has no BatchNormalization
or Dropout in the frozen part, so the cached output is the one the full model computes, up to
float16 rounding.

The cache is fingerprinted by the dataset's keys and metadata, the frozen weights and the
preprocessing; any change rebuilds it. Filling is resumable: `meta.json` counts the rows written.
The tail is a `keras.Model` over the full model's own layers, so checkpoints and the exported
model are still the whole network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from alti2v.data.files import atomic_write_json, read_json
from alti2v.data.layout import DataDir
from alti2v.data.records import (
    DB,
    SPLITS,
    contents_hash,
    parse_record_key,
    read_meta,
    record_keys,
    unpack_record,
)
from alti2v.data.vocabulary import multi_hot
from alti2v.errors import PipelineError
from alti2v.progress import SILENT, Progress
from alti2v.train.batches import PostBatches

log = logging.getLogger(__name__)

FEATURE_DTYPE = np.float16  # halves the disk and read cost; VGG16's activations fit its range
FILL_BATCH_SIZE = 32  # images per forward pass of the frozen layers while filling
PROGRESS_SECONDS = 30.0  # how often a fill records its progress (the most a kill can cost)


class FeatureCacheError(PipelineError):
    pass


def split_head(model: keras.Model, freeze: int) -> tuple[keras.Model, keras.Model]:
    """(frozen head, trainable tail) of `model`, sharing its layers and weights.

    The tail's input is the output of layer `freeze - 1`; training the tail trains `model`.
    """
    if freeze < 2:
        raise FeatureCacheError(
            f"--cache-features needs frozen layers to cache; --freeze {freeze} leaves none"
        )
    cut = model.layers[freeze - 1]
    head = keras.Model(model.inputs, cut.output, name="frozen_head")
    features = keras.Input(shape=cut.output.shape[1:], name="features")
    outputs = features
    for layer in model.layers[freeze:]:  # VGG16 and the head are one chain of layers
        outputs = layer(outputs)
    return head, keras.Model(features, outputs, name="trainable_tail")


def fingerprint(db_meta: dict, keys: dict[str, list[bytes]], head: keras.Model, preprocess: str):
    """A hash of everything the cached features depend on."""
    digest = hashlib.sha256()
    digest.update(json.dumps({**db_meta, "preprocess": preprocess}, sort_keys=True).encode())
    for split in SPLITS:
        digest.update(f"{split}:{len(keys[split])}\n".encode())
        for key in keys[split]:
            digest.update(key + b"\n")
    for weight in head.weights:  # the frozen weights themselves, whatever file they came from
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()[:16]


class FeatureCache:
    """The cached features of both splits of one dataset, filled on first use."""

    def __init__(self, data: DataDir, db: DB, model: keras.Model, freeze: int, preprocess):
        self.data = data
        self.folder = data.features
        self.db = db
        self.preprocess = preprocess
        self.head, self.tail = split_head(model, freeze)
        self.shape = tuple(self.head.output.shape[1:])
        self.keys = {split: record_keys(db, split) for split in SPLITS}
        self.rows = {key: row for split in SPLITS for row, key in enumerate(self.keys[split])}
        # The records' contents too: a post repacked under the same key changes its features.
        db_meta = {**(read_meta(db, data.db) or {}), "contents": contents_hash(db)}
        self.fingerprint = fingerprint(db_meta, self.keys, self.head, preprocess)
        self.arrays: dict[str, np.ndarray] = {}

    @property
    def bytes_per_image(self) -> int:
        return math.prod(self.shape) * np.dtype(FEATURE_DTYPE).itemsize

    def path(self, split: str) -> Path:
        return self.data.features_array(split)

    def prepare(self, progress: Progress = SILENT) -> None:
        """Fill what is missing (all of it when the data or weights changed), then map it."""
        meta_path = self.data.features_meta
        fix = f"delete {self.folder} to compute it again"
        meta = read_json(meta_path, FeatureCacheError, fix, missing={})
        filled = meta.get("filled")
        if meta.get("fingerprint") == self.fingerprint and not (
            isinstance(filled, dict) and all(type(filled.get(split)) is int for split in SPLITS)
        ):
            raise FeatureCacheError(f'{meta_path}: unreadable (no "filled" counts); {fix}')
        if meta.get("fingerprint") != self.fingerprint:
            if meta:
                log.info("%s: dataset or frozen weights changed; computing it again", self.folder)
            shutil.rmtree(self.folder, ignore_errors=True)
            meta = {"fingerprint": self.fingerprint, "filled": dict.fromkeys(SPLITS, 0)}
        total = sum(len(keys) for keys in self.keys.values())
        log.info(
            "feature cache %s: %d images x %.0f KiB = %.2f GB on disk",
            self.folder, total, self.bytes_per_image / 1024, total * self.bytes_per_image / 1e9,
        )  # fmt: skip
        self._check_disk(meta)
        self.folder.mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            self._fill(split, meta, meta_path, progress)
            self.arrays[split] = np.load(self.path(split), mmap_mode="r")

    def _check_disk(self, meta: dict) -> None:
        missing = sum(
            len(self.keys[split]) for split in SPLITS if not self.path(split).is_file()
        )  # a started file already holds its full size (sparse or not)
        needed = missing * self.bytes_per_image
        existing = self.folder if self.folder.exists() else self.folder.parent
        free = shutil.disk_usage(existing).free
        if needed > free:
            raise FeatureCacheError(
                f"--cache-features needs {needed / 1e9:.2f} GB in {self.folder} "
                f"({self.bytes_per_image / 1024:.0f} KiB per image) but {free / 1e9:.2f} GB "
                "are free; free some space or train without --cache-features"
            )

    def _fill(self, split: str, meta: dict, meta_path: Path, progress: Progress) -> None:
        keys, start = self.keys[split], meta["filled"][split]
        if start == len(keys) and self.path(split).is_file():
            return
        if start == 0 or not self.path(split).is_file():
            start = meta["filled"][split] = 0
            array = np.lib.format.open_memmap(
                self.path(split), mode="w+", dtype=FEATURE_DTYPE, shape=(len(keys), *self.shape)
            )
        else:
            array = np.load(self.path(split), mmap_mode="r+")
        num_tags = self.tail.output.shape[-1]  # the targets PostBatches makes go unused
        batches = PostBatches(self.db, keys[start:], FILL_BATCH_SIZE, num_tags, self.preprocess)
        last_record = time.monotonic()
        with progress(
            total=len(keys), initial=start, unit=" img", desc=f"caching {split} features"
        ) as bar:
            for index in range(len(batches)):
                images, _ = batches[index]
                row = start + index * FILL_BATCH_SIZE
                array[row : row + len(images)] = keras.ops.convert_to_numpy(
                    self.head.predict_on_batch(images)
                ).astype(FEATURE_DTYPE)
                bar.update(len(images))
                meta["filled"][split] = row + len(images)
                if time.monotonic() - last_record > PROGRESS_SECONDS:
                    array.flush()  # rows on disk before the count that vouches for them
                    atomic_write_json(meta_path, meta)
                    last_record = time.monotonic()
        array.flush()
        del array
        atomic_write_json(meta_path, meta)

    def batches(self, keys: list[bytes], batch_size: int, num_tags: int) -> FeatureBatches:
        return FeatureBatches(self, keys, batch_size, num_tags)


class FeatureBatches(keras.utils.PyDataset):
    """(cached features, multi-hot targets) batches of `keys`, in the given order."""

    def __init__(self, cache: FeatureCache, keys: list[bytes], batch_size: int, num_tags: int):
        # Two threads gather the next batches from the memory map while the current one trains.
        super().__init__(workers=2, use_multiprocessing=False)
        self.cache, self.keys = cache, keys
        self.batch_size, self.num_tags = batch_size, num_tags

    def __len__(self) -> int:
        return math.ceil(len(self.keys) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = self.keys[index * self.batch_size : (index + 1) * self.batch_size]
        split, _ = parse_record_key(chosen[0])
        rows = [self.cache.rows[key] for key in chosen]
        features = self.cache.arrays[split][rows].astype(np.float32)
        # Labels stay in LevelDB: reading a record costs microseconds next to a training step.
        labels = [unpack_record(self.cache.db.get(key))[1] for key in chosen]
        targets = multi_hot(labels, self.num_tags)
        return features, targets
