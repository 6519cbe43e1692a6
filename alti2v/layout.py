"""The data directory: where every stage reads and writes, and the files that are posts.

A post is `imgs/<post_id>.txt` (its tags on one line) beside an image of the same stem and,
optionally, `imgs/<post_id>.json` (metadata, at least `rating`). Stages find their inputs and
outputs only through this module, so the layout is written down once.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Extensions we accept as images, in the order we look for them next to a .txt.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")

# Danbooru rating letters (the meaning since 2022-05) and the vocabulary tag each becomes.
RATING_TAGS = {
    "g": "rating:general",
    "s": "rating:sensitive",
    "q": "rating:questionable",
    "e": "rating:explicit",
}


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
        """--cache-features: the frozen layers' output per record (alti2v/features.py)."""
        return self.root / "features"

    @property
    def training(self) -> Path:
        return self.root / "training"

    @property
    def models(self) -> Path:
        return self.root / "models"


@dataclass(frozen=True)
class Post:
    """One tagged image on disk."""

    post_id: str
    image: Path | None
    tags_file: Path
    meta_file: Path

    def tags(self) -> list[str]:
        return parse_tags(self.tags_file.read_text(encoding="utf-8", errors="replace"))

    def rating_tag(self) -> str | None:
        """`rating:<name>` from the .json, or None when there is no usable rating."""
        try:
            meta = json.loads(self.meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return RATING_TAGS.get(meta.get("rating")) if isinstance(meta, dict) else None

    def labels(self) -> list[str]:
        """The post's tags plus its rating tag, each once, in file order."""
        labels = dict.fromkeys(self.tags())
        rating = self.rating_tag()
        if rating:
            labels[rating] = None
        return list(labels)


def parse_tags(text: str) -> list[str]:
    """Tags from a tag file: Danbooru's space-separated form or the comma-separated form of
    training sets ("long hair, 1girl"), where spaces inside a tag become underscores."""
    if "," in text:
        parts = (part.strip().replace(" ", "_") for part in text.split(","))
    else:
        parts = text.split()
    return list(dict.fromkeys(part for part in parts if part))


def find_image(imgs: Path, stem: str) -> Path | None:
    for extension in IMAGE_EXTENSIONS:
        for candidate in (imgs / (stem + extension), imgs / (stem + extension.upper())):
            if candidate.is_file():
                return candidate
    return None


def iter_posts(imgs: Path) -> Iterator[Post]:
    """Every `<stem>.txt` in `imgs`, sorted by stem (numerically where stems are numbers)."""
    stems = sorted((path.stem for path in imgs.glob("*.txt")), key=_stem_order)
    for stem in stems:
        yield Post(stem, find_image(imgs, stem), imgs / f"{stem}.txt", imgs / f"{stem}.json")


def _stem_order(stem: str) -> tuple[int, int, str]:
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        # mkstemp makes files private (0600); give them the mode a plain open() would.
        os.fchmod(descriptor, 0o666 & ~_UMASK)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: object) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
