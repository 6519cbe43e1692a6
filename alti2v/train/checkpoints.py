"""Training checkpoints: everything a resume needs, committed atomically, `last` and `best` kept.

A checkpoint is a folder `checkpoints/e<epoch>-s<step>/` holding `model.keras` (architecture,
weights and optimizer state) and `state.json` (position, best metric, resolved config,
vocabulary hash, dataset fingerprint, history). It is published with `publish_folder` (written
as `.tmp-<name>/`, fsynced, renamed), so a folder without the prefix is always complete; older
ones are removed only after the new one is in.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras

from alti2v.data.files import TEMPORARY_PREFIX, atomic_write_json, publish_folder, read_json
from alti2v.data.layout import CheckpointFiles
from alti2v.errors import PipelineError, one_line

# Imported to register their classes with Keras: a checkpoint names its optimizer and loss.
from alti2v.model import losses, optimizer  # noqa: F401

log = logging.getLogger(__name__)


class CheckpointError(PipelineError):
    pass


@dataclass
class TrainState:
    config: dict
    vocab_hash: str
    num_tags: int
    dataset: dict | None = None  # fingerprint of the dataset trained on (alti2v.train.resume)
    epoch: int = 0  # completed epochs
    step: int = 0  # batches of epoch `epoch` already trained
    loss_sum: float = 0.0  # loss summed over the images of the unfinished epoch
    train_seconds: float = 0.0  # in the unfinished epoch
    best_map: float | None = None
    best_checkpoint: str | None = None
    exported: str | None = None  # model folder written for this state, if any
    weights_sha256: str | None = None  # of the --weights file a new run started from, if a file
    seed_states: dict = field(default_factory=dict)  # layer name -> its SeedGenerator's state
    history: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"e{self.epoch:04d}-s{self.step:07d}"


def save_checkpoint(folder: Path, model: keras.Model, state: TrainState) -> Path:
    """Commit `model` and `state` as a new checkpoint; keep only it and the best one."""
    final = folder / state.name
    state.seed_states = _seed_states(model)
    with publish_folder(final) as temporary:
        files = CheckpointFiles(temporary)
        model.save(files.model)
        atomic_write_json(files.state, asdict(state))
    for old in folder.iterdir():
        if old.name not in (final.name, state.best_checkpoint):
            shutil.rmtree(old, onerror=_report_cleanup_failure)
    return final


def _seed_states(model: keras.Model) -> dict[str, list[int]]:
    # Keras saves no SeedGenerator state (Dropout's masks): the checkpoint keeps it, so a resumed
    # run draws the masks an uninterrupted one would.
    return {
        layer.name: keras.ops.convert_to_numpy(layer.seed_generator.state).tolist()
        for layer in model.layers
        if getattr(layer, "seed_generator", None) is not None
    }


def restore_seed_states(model: keras.Model, state: TrainState) -> None:
    for name, value in state.seed_states.items():
        generator = model.get_layer(name).seed_generator
        generator.state.assign(keras.ops.convert_to_tensor(value, generator.state.dtype))


def _report_cleanup_failure(function, path: str, exc_info) -> None:
    # The new checkpoint is in; an old one that stays only costs disk space. Say so.
    log.warning("cannot remove %s (%s); delete it by hand", path, one_line(exc_info[1]))


def record_state(checkpoint: Path, state: TrainState) -> None:
    """Update the state of an existing checkpoint whose weights did not change."""
    atomic_write_json(CheckpointFiles(checkpoint).state, asdict(state))


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in `folder`, or None."""
    if not folder.is_dir():
        return None
    complete = [
        path
        for path in folder.iterdir()
        if not path.name.startswith(TEMPORARY_PREFIX) and CheckpointFiles(path).state.is_file()
    ]
    return max(complete, key=lambda path: path.name, default=None)


def load_state(checkpoint: Path) -> TrainState:
    path = CheckpointFiles(checkpoint).state
    fields = read_json(path, CheckpointError, _WAYS_OUT)
    try:
        return TrainState(**fields)
    except TypeError as error:  # fields missing or unknown
        raise CheckpointError(f"{path}: unreadable ({one_line(error)}); {_WAYS_OUT}") from None


def load_checkpoint_model(checkpoint: Path, compile: bool = True) -> keras.Model:
    path = CheckpointFiles(checkpoint).model
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors, KeyError...
        raise CheckpointError(f"{path}: unreadable ({one_line(error)}); {_WAYS_OUT}") from None


_WAYS_OUT = "delete that checkpoint folder to resume from an older one, or train with --fresh"
