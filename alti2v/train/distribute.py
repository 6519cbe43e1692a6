"""--distribute: data-parallel training on every local device and on several machines.

Keras' own `DataParallel` (JAX backend) replicates the model on every device and splits each
batch along its first axis; the gradients are averaged by XLA's all-reduce. Several machines
(processes) join through `keras.distribution.initialize`. Keras shards only tf.data by itself,
so the rest is done here by hand:

- every process reads its own contiguous part of each global batch (`Cluster.local_share`), so
  the processes together read exactly the epoch's permutation, once;
- a batch must split evenly over the devices: the last, short batch of an epoch is cut to a
  multiple of the device count (at most `devices - 1` images sit out an epoch, different ones
  each epoch), and eval batches are padded with a repeated image whose scores are dropped;
- files are written by process 0 alone while the others wait (`Cluster.on_first_process`);
- LevelDB opens in one process only, so every machine reads its own copy of the dataset; a
  resume needs process 0's checkpoint on every machine (checked before anything loads).

    cluster = start(coordinator=None, num_processes=None, process_id=None)
    train(data, config, cluster=cluster)
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import keras
import numpy as np

from alti2v import defaults
from alti2v.errors import PipelineError

log = logging.getLogger(__name__)

Result = TypeVar("Result")

# The environment variables keras.distribution.initialize reads when a flag is not given.
COORDINATOR_VARIABLE = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES_VARIABLE = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID_VARIABLE = "KERAS_DISTRIBUTION_PROCESS_ID"


class DistributeError(PipelineError):
    pass


@dataclass(frozen=True)
class Cluster:
    """Where this process stands among the processes and devices training one model."""

    process_index: int = 0
    process_count: int = 1
    device_count: int = 1  # over all processes

    @property
    def is_first(self) -> bool:
        return self.process_index == 0

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size % self.device_count:
            raise DistributeError(
                f"--batch-size {batch_size} does not split evenly over {self.device_count} "
                f"devices; give a multiple of {self.device_count}"
            )

    def check_same_checkpoint(self, checkpoints: Path, checkpoint: Path | None) -> None:
        """Refuse to start unless every process resumes from the same checkpoint (or none)."""
        if self.process_count == 1:
            return
        name = checkpoint.name if checkpoint else "no checkpoint"
        names = self.gather(np.array([zlib.crc32(name.encode()) % 2**31], dtype=np.int32))
        if (names != names[0]).any():
            raise DistributeError(
                f"{checkpoints}: the processes would resume from different checkpoints (this "
                f"is process {self.process_index}: {name}); copy training/ from the machine of "
                "process 0 to every machine (or share it), then run again"
            )

    def whole_batches(self, keys: list[bytes], batch_size: int) -> list[bytes]:
        """`keys` less the end of a last batch that would not split evenly over the devices."""
        uneven = len(keys) % batch_size % self.device_count
        return keys[: len(keys) - uneven]

    def padded(self, keys: list[bytes], batch_size: int) -> list[bytes]:
        """`keys` with the last one repeated until the last batch splits over the devices."""
        missing = -(len(keys) % batch_size) % self.device_count
        return keys + keys[-1:] * missing

    def local_share(self, batch_keys: list[bytes]) -> list[bytes]:
        """This process's contiguous part of one global batch (a multiple of the devices)."""
        size = len(batch_keys) // self.process_count
        return batch_keys[self.process_index * size : (self.process_index + 1) * size]

    def gather(self, local_rows: np.ndarray) -> np.ndarray:
        """Every process's rows of one batch, in process order: the whole batch."""
        if self.process_count == 1:
            return local_rows
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(local_rows, tiled=True))

    def any_process(self, flag: bool) -> bool:
        """True on every process when `flag` is true on any (a stop all must agree on)."""
        if self.process_count == 1:
            return flag
        return bool(self.gather(np.array([flag])).any())

    def on_first_process(self, function: Callable[..., Result], *args) -> Result | None:
        """Run `function` on process 0 alone, then hold every process until it is done.

        It runs outside the distribution: saving a model creates variables, which under
        DataParallel is a collective step the other processes would never join."""
        result = None
        if self.is_first:
            distribution = keras.distribution.distribution()
            keras.distribution.set_distribution(None)
            try:
                result = function(*args)
            finally:
                keras.distribution.set_distribution(distribution)
        self.wait_for_all(getattr(function, "__name__", "write"))
        return result

    def wait_for_all(self, name: str) -> None:
        """Return once every process has called this with the same `name`."""
        if self.process_count > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(name)


ONE_DEVICE = Cluster()


def start(coordinator: str | None, num_processes: int | None, process_id: int | None) -> Cluster:
    """Join the cluster (when there are several processes) and distribute over its devices.

    A value left None comes from the KERAS_DISTRIBUTION_* environment variables, else one
    process. Call before any other Keras or JAX work."""
    backend = keras.backend.backend()
    if backend != "jax":
        raise DistributeError(
            f"--distribute needs the JAX backend (this is {backend}): set KERAS_BACKEND=jax"
        )
    coordinator = coordinator or os.environ.get(COORDINATOR_VARIABLE)
    num_processes = num_processes or _int_variable(NUM_PROCESSES_VARIABLE)
    num_processes = num_processes or defaults.DISTRIBUTE_PROCESSES
    if process_id is None:
        process_id = _int_variable(PROCESS_ID_VARIABLE) or 0
    if num_processes > 1:
        if not coordinator:
            raise DistributeError(
                f"{num_processes} processes need --coordinator HOST:PORT (the address of "
                f"process 0, the same on every machine) or {COORDINATOR_VARIABLE}"
            )
        if not 0 <= process_id < num_processes:
            raise DistributeError(
                f"--process-id {process_id} is not in 0..{num_processes - 1}; give each "
                "machine its own number, 0 on the coordinator"
            )
        log.info(
            "joining %d processes as process %d through %s",
            num_processes, process_id, coordinator,
        )  # fmt: skip
    with _native_stdout_to_stderr():
        if num_processes > 1:
            keras.distribution.initialize(coordinator, num_processes, process_id)
        # The batches are already split by hand (Cluster.local_share): Keras must not split them.
        distribution = keras.distribution.DataParallel(auto_shard_dataset=False)
        keras.distribution.set_distribution(distribution)

        import jax

        cluster = Cluster(jax.process_index(), jax.process_count(), jax.device_count())
    log.info(
        "data parallel: process %d of %d, %d %s devices in all (%d here)",
        cluster.process_index, cluster.process_count, cluster.device_count,
        jax.default_backend(), jax.local_device_count(),
    )  # fmt: skip
    return cluster


@contextlib.contextmanager
def _native_stdout_to_stderr() -> Iterator[None]:
    """Gloo greets from C++ on file descriptor 1 as the processes connect; stdout is for results."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _int_variable(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise DistributeError(f"{name}={text!r} is not a whole number") from None
