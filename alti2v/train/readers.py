"""Reader processes (--reader-processes): training batches made outside the training process,
for hosts where one Python process cannot feed the accelerator.

LevelDB admits one process, so the trainer still reads each record's bytes (LevelDB's own work
runs without the GIL); what holds the GIL for part of every image, unpacking the record,
augmenting it, making the network's input and the targets, runs in the workers. Each worker is
`python -m alti2v.train.readers`, a program of its own (it imports only the data modules, never
Keras or the trainer's script). It gets a batch's keys and records through a pipe, as framed
bytes (never pickled), writes the batch into its slot, a file in /dev/shm both processes map, and
answers; the trainer copies the batch out before the slot is used again.

    with ReaderProcesses(4, batch_size=128, image_size=150, num_tags=4096, preprocess="vgg",
                         augment=("flip",), seed=0) as workers:
        images, targets = workers.make(keys, values, epoch=3, augmented=True)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from alti2v.data.images import to_model_input
from alti2v.data.records import unpack_record
from alti2v.data.vocabulary import multi_hot
from alti2v.errors import PipelineError, one_line
from alti2v.train.augment import Augmenter, parse_augment

_HEADER = struct.Struct("<iI?")  # epoch, records in the batch, augmented
_STOP = b""  # a header this short asks the worker to end
_DONE = b""  # a worker's answer when the batch is in its slot; otherwise the error's message
STOP_SECONDS = 5  # how long a worker may take to end before it is terminated
SHARED_MEMORY = "/dev/shm"  # RAM-backed where it exists and has room; else the temporary folder


class ReaderError(PipelineError):
    """A reader process failed or ended; training stops with a checkpoint of what it did."""


def make_batch(
    keys: list[bytes],
    values: list[bytes],
    num_tags: int,
    preprocess: str,
    augment: Augmenter | None,
    epoch: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(network input, multi-hot targets) of a batch's records: the threads' and the workers'
    one recipe."""
    records = [unpack_record(value) for value in values]
    images = np.stack([pixels for pixels, _ in records])
    if augment is not None:
        images = augment(images, keys, epoch)
    targets = multi_hot([labels for _, labels in records], num_tags)
    return to_model_input(images, preprocess), targets


def _slot_arrays(path: str, batch_size: int, image_size: int, num_tags: int):
    """The slot file's bytes as a batch of float32 inputs followed by its float32 targets."""
    pixels = batch_size * image_size * image_size * 3
    whole = np.memmap(path, dtype=np.float32, mode="r+", shape=(pixels + batch_size * num_tags,))
    images = whole[:pixels].reshape(batch_size, image_size, image_size, 3)
    return images, whole[pixels:].reshape(batch_size, num_tags)


def _finding_this_package() -> dict[str, str]:
    """The environment with this package's folder first on PYTHONPATH: the trainer's script
    may have been started from anywhere."""
    root = str(Path(__file__).resolve().parents[2])
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _slot_folder(total_bytes: int) -> str:
    with contextlib.suppress(OSError):
        # Twice the room asked: a tmpfs that fills makes a write into the mapping fail with
        # SIGBUS (a container's /dev/shm is often 64 MiB).
        if shutil.disk_usage(SHARED_MEMORY).free > 2 * total_bytes:
            return SHARED_MEMORY
    return tempfile.gettempdir()


def _pack_keys(keys: list[bytes]) -> bytes:
    """A batch's keys as one message: their lengths (uint32), then the keys end to end."""
    return np.array([len(key) for key in keys], dtype="<u4").tobytes() + b"".join(keys)


def _unpack_keys(message: bytes, count: int) -> list[bytes]:
    ends = np.cumsum(np.frombuffer(message[: 4 * count], dtype="<u4"), dtype=np.int64).tolist()
    body = message[4 * count :]
    return [body[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


def _serve(requests: Connection, answers: Connection, slot: str, settings: argparse.Namespace):
    """A worker's life: a batch in, its arrays into the slot, until the trainer says stop."""
    images_out, targets_out = _slot_arrays(
        slot, settings.batch_size, settings.image_size, settings.num_tags
    )
    augment = parse_augment(settings.augment)
    augmenter = Augmenter(augment, settings.seed) if augment else None
    answers.send_bytes(_DONE)  # mapped: the trainer may remove the file's name
    while True:
        try:
            header = requests.recv_bytes()
        except (EOFError, OSError):  # the trainer has gone
            return
        if header == _STOP:
            return
        epoch, count, augmented = _HEADER.unpack(header)
        keys = _unpack_keys(requests.recv_bytes(), count)
        values = [requests.recv_bytes() for _ in range(count)]
        try:
            images, targets = make_batch(
                keys, values, settings.num_tags, settings.preprocess,
                augmenter if augmented else None, epoch,
            )  # fmt: skip
            images_out[:count] = images
            targets_out[:count] = targets
            answer = _DONE
        except Exception as error:  # sent to the trainer, which raises it as a ReaderError
            answer = one_line(error).encode()  # never empty: one_line falls back to the type
        answers.send_bytes(answer)


def worker_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alti2v.train.readers")
    for name in ("requests", "answers", "batch_size", "image_size", "num_tags", "seed"):
        parser.add_argument(name, type=int)
    parser.add_argument("slot")
    parser.add_argument("preprocess")
    parser.add_argument("augment")
    settings = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's to handle
    requests = Connection(settings.requests, writable=False)
    answers = Connection(settings.answers, readable=False)
    _serve(requests, answers, settings.slot, settings)
    return 0


class _Worker:
    def __init__(self, process: subprocess.Popen, name: str, requests, answers, slot: str,
                 batch_size: int, image_size: int, num_tags: int):  # fmt: skip
        self.process, self.name = process, name
        self.requests, self.answers = requests, answers
        self.slot = slot
        self.images, self.targets = _slot_arrays(slot, batch_size, image_size, num_tags)


class ReaderProcesses:
    """`count` worker processes, each making one batch at a time; `make` may be called from
    several threads (Keras's prefetch threads), each then waiting for an idle worker."""

    def __init__(
        self,
        count: int,
        batch_size: int,
        image_size: int,
        num_tags: int,
        preprocess: str,
        augment: tuple[str, ...],
        seed: int,
    ):
        self.batch_size, self.image_size, self.num_tags = batch_size, image_size, num_tags
        slot_bytes = 4 * batch_size * (image_size * image_size * 3 + num_tags)
        folder = _slot_folder(count * slot_bytes)
        self._workers: list[_Worker] = []
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        try:
            for index in range(count):
                worker = self._start(f"reader process {index + 1}", folder, slot_bytes,
                                     preprocess, augment, seed)  # fmt: skip
                self._workers.append(worker)
            for worker in self._workers:
                self._receive(worker)  # each has mapped its slot
                os.unlink(worker.slot)  # the mappings stay; nothing is left behind on a crash
                self._idle.put(worker)
        except BaseException:
            self.close()
            raise

    def _start(self, name, folder, slot_bytes, preprocess, augment, seed) -> _Worker:
        handle, slot = tempfile.mkstemp(prefix="alt-i2v-reader-", dir=folder)
        with os.fdopen(handle, "wb") as file:
            file.truncate(slot_bytes)
        requests_out, requests_in = os.pipe()  # (read end, write end)
        answers_out, answers_in = os.pipe()
        settings = [requests_out, answers_in, self.batch_size, self.image_size, self.num_tags,
                    seed, slot, preprocess, ",".join(augment) or "none"]  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "-m", "alti2v.train.readers", *map(str, settings)],
            pass_fds=(requests_out, answers_in),
            stdin=subprocess.DEVNULL,
            env=_finding_this_package(),
        )
        os.close(requests_out)
        os.close(answers_in)
        return _Worker(process, name, Connection(requests_in, readable=False),
                       Connection(answers_out, writable=False), slot,
                       self.batch_size, self.image_size, self.num_tags)  # fmt: skip

    def _receive(self, worker: _Worker) -> bytes:
        try:
            return worker.answers.recv_bytes()
        except (EOFError, OSError) as error:
            raise self._ended(worker) from error

    def _ended(self, worker: _Worker) -> ReaderError:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.process.wait(0.1)
        return ReaderError(
            f"{worker.name} ended (exit code {worker.process.returncode}); run the same "
            "command again to resume, or train with --reader-processes 0"
        )

    def __len__(self) -> int:
        return len(self._workers)

    def make(
        self, keys: list[bytes], values: list[bytes], epoch: int, augmented: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """The batch of these records, made by the next idle worker: as `make_batch` makes it."""
        if len(keys) > self.batch_size:
            raise ValueError(f"{len(keys)} records for slots of {self.batch_size}")
        worker = self._idle.get()
        try:
            try:
                worker.requests.send_bytes(_HEADER.pack(epoch, len(keys), augmented))
                worker.requests.send_bytes(_pack_keys(keys))
                for value in values:
                    worker.requests.send_bytes(value)
            except OSError as error:
                raise self._ended(worker) from error
            answer = self._receive(worker)
            if answer != _DONE:
                raise ReaderError(f"{worker.name}: {answer.decode(errors='replace')}")
            # Copies: the batch leaves for the device asynchronously, and the slot is reused.
            return worker.images[: len(keys)].copy(), worker.targets[: len(keys)].copy()
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        """Ends the workers: idle ones are asked to, one still busy (a Ctrl-C, an error in a
        prefetch thread nobody waits for) is terminated, as its batch is not wanted."""
        idle = set()
        with contextlib.suppress(queue.Empty):
            while True:
                idle.add(id(self._idle.get_nowait()))
        for worker in self._workers:
            if id(worker) in idle:
                with contextlib.suppress(OSError):  # it has ended already
                    worker.requests.send_bytes(_STOP)
        for worker in self._workers:
            try:
                worker.process.wait(STOP_SECONDS if id(worker) in idle else 0)
            except subprocess.TimeoutExpired:
                worker.process.terminate()
                worker.process.wait()
            worker.requests.close()
            worker.answers.close()
            with contextlib.suppress(FileNotFoundError):  # removed once it was mapped
                os.unlink(worker.slot)
        self._workers = []

    def __enter__(self) -> ReaderProcesses:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(worker_main())
