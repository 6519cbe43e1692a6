"""Reader processes (--reader-processes): the batches they make are the threads' to the bit, and
a bad record or a worker that dies is one error, never a hang or a file left behind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from alti2v.data.records import pack_record
from alti2v.train.augment import Augmenter
from alti2v.train.batches import PostBatches
from alti2v.train.readers import ReaderError, ReaderProcesses

SIDE, TAGS, BATCH, AUGMENT, SEED = 24, 7, 4, ("flip", "crop", "light"), 3


def records(count: int) -> dict[bytes, bytes]:
    rng = np.random.default_rng(0)
    return {
        f"train/{post}".encode(): pack_record(
            rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8),
            sorted(rng.choice(TAGS, size=rng.integers(0, 4), replace=False).tolist()),
        )
        for post in range(count)
    }


def start(count: int) -> ReaderProcesses:
    return ReaderProcesses(count, BATCH, SIDE, TAGS, "vgg", AUGMENT, SEED)


def every_batch(batches: PostBatches) -> list[tuple[np.ndarray, np.ndarray]]:
    with ThreadPoolExecutor(3) as threads:  # several at once, as Keras's prefetch threads ask
        return list(threads.map(batches.__getitem__, range(len(batches))))


def test_processes_make_the_batches_the_threads_make() -> None:
    db = records(11)  # 3 batches of 4, the last one short
    keys = sorted(db)
    augment = Augmenter(AUGMENT, SEED)
    with start(2) as workers:
        for augmented, epoch in ((augment, 2), (None, 0)):  # a training epoch, then the eval's
            ours = every_batch(PostBatches(db, keys, BATCH, TAGS, "vgg", None, augmented, epoch))
            theirs = every_batch(
                PostBatches(db, keys, BATCH, TAGS, "vgg", None, augmented, epoch, 3, workers)
            )
            assert [len(images) for images, _ in theirs] == [4, 4, 3]
            for (images, targets), (their_images, their_targets) in zip(ours, theirs, strict=True):
                assert their_images.dtype == images.dtype == np.float32
                np.testing.assert_array_equal(their_images, images)
                np.testing.assert_array_equal(their_targets, targets)
        # The augmentation did run in the workers: an unaugmented epoch differs.
        flipped = workers.make(keys[:4], [db[key] for key in keys[:4]], 2, augmented=True)
        plain = workers.make(keys[:4], [db[key] for key in keys[:4]], 2, augmented=False)
        assert not np.array_equal(flipped[0], plain[0])


def test_a_bad_record_is_one_error_and_the_workers_go_on() -> None:
    db = records(4)
    keys = sorted(db)
    with start(1) as workers:
        with pytest.raises(ReaderError, match=r"^reader process 1: ") as raised:
            workers.make(keys[:2], [db[keys[0]], b"\xc1 not a record"], 0, augmented=False)
        assert "\n" not in str(raised.value)
        images, _ = workers.make(keys, [db[key] for key in keys], 0, augmented=False)
        assert images.shape == (4, SIDE, SIDE, 3)


def test_a_worker_that_dies_is_an_error_not_a_hang() -> None:
    db = records(2)
    keys = sorted(db)
    with start(1) as workers:
        (worker,) = workers._workers
        worker.process.kill()
        worker.process.wait()
        with pytest.raises(ReaderError, match=r"reader process 1 ended \(exit code -9\); run the"):
            workers.make(keys, [db[key] for key in keys], 0, augmented=False)


def test_closing_ends_every_worker_and_leaves_no_file() -> None:
    workers = start(2)
    processes = [worker.process for worker in workers._workers]
    slots = [Path(worker.slot) for worker in workers._workers]
    # Each slot's name is removed once its worker has mapped it: a crash leaves nothing behind.
    assert not any(slot.exists() for slot in slots)
    assert all(process.poll() is None for process in processes)
    workers.close()
    assert [process.returncode for process in processes] == [0, 0]  # asked to end, not killed
