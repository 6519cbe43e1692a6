"""Training checkpoints: everything a resume needs, committed atomically, `last` and `best` kept.

A checkpoint is a folder `checkpoints/e<epoch>-s<step>/` holding `model.keras` (architecture,
weights and optimizer state) and `state.json` (position, best metric, resolved config,
vocabulary hash, history). It is written as `.tmp-<name>/` and renamed into place, so a folder
without the prefix is always complete; older ones are removed only after the new one is in.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras

from alti2v.layout import atomic_write_json

MODEL_FILE = "model.keras"
STATE_FILE = "state.json"
TEMPORARY_PREFIX = ".tmp-"


@dataclass
class TrainState:
    config: dict
    vocab_hash: str
    num_tags: int
    epoch: int = 0  # completed epochs
    step: int = 0  # batches of epoch `epoch` already trained
    loss_sum: float = 0.0  # loss summed over the images of the unfinished epoch
    train_seconds: float = 0.0  # in the unfinished epoch
    best_map: float | None = None
    best_checkpoint: str | None = None
    exported: str | None = None  # model folder written for this state, if any
    history: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"e{self.epoch:04d}-s{self.step:07d}"


def save_checkpoint(folder: Path, model: keras.Model, state: TrainState) -> Path:
    """Commit `model` and `state` as a new checkpoint; keep only it and the best one."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / state.name
    temporary = folder / f"{TEMPORARY_PREFIX}{state.name}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    model.save(temporary / MODEL_FILE)
    atomic_write_json(temporary / STATE_FILE, asdict(state))
    if final.exists():
        shutil.rmtree(final)
    temporary.rename(final)
    for old in folder.iterdir():
        if old.name not in (final.name, state.best_checkpoint):
            shutil.rmtree(old, ignore_errors=True)
    return final


def record_state(checkpoint: Path, state: TrainState) -> None:
    """Update the state of an existing checkpoint whose weights did not change."""
    atomic_write_json(checkpoint / STATE_FILE, asdict(state))


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in `folder`, or None."""
    if not folder.is_dir():
        return None
    complete = [
        path
        for path in folder.iterdir()
        if not path.name.startswith(TEMPORARY_PREFIX) and (path / STATE_FILE).is_file()
    ]
    return max(complete, key=lambda path: path.name, default=None)


def load_state(checkpoint: Path) -> TrainState:
    return TrainState(**json.loads((checkpoint / STATE_FILE).read_text()))


def load_checkpoint_model(checkpoint: Path, compile: bool = True) -> keras.Model:
    return keras.models.load_model(checkpoint / MODEL_FILE, compile=compile)
