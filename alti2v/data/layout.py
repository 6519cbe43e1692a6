"""The data directory: every path and file name under it, written down once.

Stages find their inputs and outputs only through `DataDir` and the per-folder classes below
(`ModelFiles`, `CheckpointFiles`, `IndexFiles`, `EvalFiles`), so no other module joins
`data_dir / "checkpoints"` or spells a file name itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The Keras file of a checkpoint and of an exported model.
MODEL_FILE = "model.keras"
# Beside an exported model: the per-tag thresholds --eval fitted (alti2v.tag.thresholds).
THRESHOLDS_FILE = "thresholds.json"


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
    def features_meta(self) -> Path:
        """The cache's fingerprint and how many rows of each split are filled."""
        return self.features / "meta.json"

    def features_array(self, split: str) -> Path:
        return self.features / f"{split}.npy"

    @property
    def training(self) -> Path:
        return self.root / "training"

    @property
    def checkpoints(self) -> Path:
        """A folder per checkpoint (`CheckpointFiles`)."""
        return self.training / "checkpoints"

    @property
    def history(self) -> Path:
        """One row per trained epoch."""
        return self.training / "history.csv"

    @property
    def models(self) -> Path:
        """A folder per exported model (`ModelFiles`)."""
        return self.root / "models"

    @property
    def index(self) -> Path:
        """--index: nearest-neighbour indexes of the dataset (alti2v.vectors.index)."""
        return self.root / "index"

    def index_files(self, layer: str) -> IndexFiles:
        # One index per layer: trying another layer does not throw away the default one.
        return IndexFiles(self.index / layer)

    @property
    def scrape_state(self) -> Path:
        """How far each search got and which posts failed (alti2v.scrape.state)."""
        return self.root / "scrape-state.json"

    @property
    def scrape_lock(self) -> Path:
        """Held by a running scraper, so two runs keep off one data directory."""
        return self.root / ".scrape.lock"

    @property
    def vectors(self) -> Path:
        """--vec's default output; the file order goes beside it as vectors.txt."""
        return self.root / "vectors.npy"

    def evaluation(self, model_name: str) -> EvalFiles:
        """Where --eval writes its judgement of the model `models/<model_name>/`."""
        return EvalFiles(self.root / "eval" / model_name)

    def comparison(self, name: str) -> ComparisonFiles:
        """Where --eval with several --model writes how they compare (`compare-<time>`)."""
        return ComparisonFiles(self.root / "eval" / name)


@dataclass(frozen=True)
class PostFiles:
    """The files of one post in an images folder (`imgs/`, or any folder in the layout)."""

    imgs: Path
    stem: str  # the post id

    @property
    def tags(self) -> Path:
        """Its tags on one line (alti2v.data.posts); the post exists once this file does."""
        return self.imgs / f"{self.stem}.txt"

    @property
    def meta(self) -> Path:
        """Optional metadata: `rating`, the Danbooru tag categories, md5s."""
        return self.imgs / f"{self.stem}.json"

    def image(self, extension: str) -> Path:
        return self.imgs / f"{self.stem}{extension}"


@dataclass(frozen=True)
class _KerasFolder:
    folder: Path

    @property
    def model(self) -> Path:
        """The Keras file: architecture and weights (a checkpoint's: optimizer state too)."""
        return self.folder / MODEL_FILE


class ModelFiles(_KerasFolder):
    """An exported model: `models/<time>/...`, or wherever --model points."""

    @property
    def vocab(self) -> Path:
        """The vocabulary the model was trained with, which travels with it."""
        return self.folder / "vocab.txt"

    @property
    def info(self) -> Path:
        return self.folder / "model.json"

    @property
    def thresholds(self) -> Path:
        """Per-tag thresholds --eval fitted (alti2v.tag.thresholds)."""
        return self.folder / THRESHOLDS_FILE


class CheckpointFiles(_KerasFolder):
    """One training checkpoint: `training/checkpoints/e<epoch>-s<step>/...`."""

    @property
    def state(self) -> Path:
        return self.folder / "state.json"


@dataclass(frozen=True)
class IndexFiles:
    """One nearest-neighbour index: `index/<layer>/...`."""

    folder: Path

    @property
    def info(self) -> Path:
        """Which model made it, its posts, and the name of the current graph."""
        return self.folder / "index.json"

    def graph(self, name: str) -> Path:
        return self.folder / name

    @staticmethod
    def graph_name(next_key: int) -> str:
        return f"graph-{next_key:012d}.usearch"


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


@dataclass(frozen=True)
class ComparisonFiles:
    """The outputs of --eval for several models: `eval/compare-<time>/...`."""

    folder: Path

    @property
    def summary(self) -> Path:
        return self.folder / "comparison.json"

    @property
    def table(self) -> Path:
        """The side-by-side table in Markdown."""
        return self.folder / "comparison.md"
