"""Batches for Keras streamed from the LevelDB dataset, never the whole set in memory.

Only the keys of a split are held (bytes each); each batch reads its records on demand. The
order of an epoch is a permutation drawn from (seed, epoch), so a resumed epoch can skip exactly
the batches already trained on. With several processes (--distribute) each batch of `keys` is a
global batch and `share` picks the part this process reads. Prefetch threads read through a
`RecordReader`, which closes the database only once no thread is reading (a Ctrl-C or an error
can leave Keras's threads behind), and make each batch themselves or, given `ReaderProcesses`,
hand its records to a worker process (alti2v/train/readers.py).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import keras
import numpy as np

from alti2v.data.records import DB
from alti2v.train.augment import Augmenter
from alti2v.train.readers import ReaderProcesses, make_batch


def epoch_order(keys: list[bytes], seed: int, epoch: int) -> list[bytes]:
    permutation = np.random.default_rng([seed, epoch]).permutation(len(keys))
    return [keys[position] for position in permutation]


class ReaderClosed(RuntimeError):
    """A prefetch thread asked for a record after training ended; nobody waits for it."""


class RecordReader:
    """The database as the prefetch threads see it: `get` like plyvel's, and a `close` that
    waits for the reads in flight before it closes the database, so none reads freed memory."""

    def __init__(self, db: DB):
        self.db = db
        self._readers = 0
        self._closed = False
        self._idle = threading.Condition()

    def get(self, key: bytes) -> bytes | None:
        with self._idle:
            if self._closed:
                raise ReaderClosed("the dataset is closed")
            self._readers += 1
        try:
            # Not into LevelDB's block cache: an epoch reads each ~67 KB record once, in random
            # order, so caching it only evicts another (and costs a quarter of the read's CPU).
            return self.db.get(key, fill_cache=False)
        finally:
            with self._idle:
                self._readers -= 1
                self._idle.notify_all()

    def close(self) -> None:
        with self._idle:
            self._closed = True
            self._idle.wait_for(lambda: self._readers == 0)
        self.db.close()


class PostBatches(keras.utils.PyDataset):
    """(images, multi-hot targets) batches of `keys`, in the given order; with `augment`, each
    image changed as epoch `epoch`'s draw for its post says. `readers` threads prefetch them,
    each making its batches or, with `processes`, having one of them make it (the same arrays)."""

    def __init__(
        self,
        db: DB | RecordReader,
        keys: list[bytes],
        batch_size: int,
        num_tags: int,
        preprocess: str,
        share: Callable[[list[bytes]], list[bytes]] | None = None,
        augment: Augmenter | None = None,
        epoch: int = 0,
        readers: int = 2,
        processes: ReaderProcesses | None = None,
    ):
        # Threads: Keras's own processes would each open the database, which LevelDB admits
        # in one process only; `processes` take the GIL-bound work elsewhere.
        super().__init__(workers=readers, use_multiprocessing=False)
        self.db = db
        self.keys = keys
        self.batch_size = batch_size
        self.num_tags = num_tags
        self.preprocess = preprocess
        self.share = share
        self.augment = augment
        self.epoch = epoch
        self.processes = processes

    def __len__(self) -> int:
        return math.ceil(len(self.keys) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = self.keys[index * self.batch_size : (index + 1) * self.batch_size]
        if self.share is not None:
            chosen = self.share(chosen)
        values = [self.db.get(key) for key in chosen]
        if self.processes is not None:
            return self.processes.make(chosen, values, self.epoch, self.augment is not None)
        return make_batch(chosen, values, self.num_tags, self.preprocess, self.augment, self.epoch)
