"""The data directory: every path and file name under it, written down once.

Stages find their inputs and outputs only through `DataDir` (and the per-model `EvalFiles`), so
no other module joins `data_dir / "checkpoints"` or spells a file name itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The Keras file of a checkpoint and of an exported model.
MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class DataDir:
    """Paths of everything under one data directory."""

    root: Path

    @property
    def imgs(self) -> Path:
        return self.root / "imgs"

    @property
    def vocab(self) -> Path:
        return self.root / "vocab.txt"

    @property
    def vocab_meta(self) -> Path:
        return self.root / "vocab.json"

    @property
    def db(self) -> Path:
        return self.root / "dataset.ldb"

    @property
    def features(self) -> Path:
        """--cache-features: the frozen layers' output per record (alti2v/train/cache.py)."""
        return self.root / "features"

    @property
    def training(self) -> Path:
        return self.root / "training"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def index(self) -> Path:
        """--index: nearest-neighbour indexes of the dataset, a folder per layer (alti2v.vectors.index)."""
        return self.root / "index"

    @property
    def vectors(self) -> Path:
        """--vec's default output; the file order goes beside it as vectors.txt."""
        return self.root / "vectors.npy"

    def evaluation(self, model_name: str) -> EvalFiles:
        """Where --eval writes its judgement of the model `models/<model_name>/`."""
        return EvalFiles(self.root / "eval" / model_name)


@dataclass(frozen=True)
class EvalFiles:
    """The outputs of --eval for one model: `eval/<model name>/...`."""

    folder: Path

    @property
    def summary(self) -> Path:
        return self.folder / "summary.json"

    @property
    def per_tag(self) -> Path:
        return self.folder / "per_tag.csv"

    @property
    def report(self) -> Path:
        return self.folder / "report.html"

    def picture(self, name: str) -> Path:
        return self.folder / f"{name}.png"

    @property
    def scratch(self) -> Path:
        """Memory-mapped score matrices of the run in progress; removed when it ends."""
        return self.folder / ".scratch"
