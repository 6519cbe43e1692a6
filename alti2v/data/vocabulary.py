"""--maeshori: count tags over the data directory and keep the most frequent as the vocabulary.

The vocabulary is `vocab.txt`, one tag per line; a tag's line number is its label index
everywhere (LevelDB, the model's outputs, the copy saved beside every model). `vocab.json` beside
it records how it was made, and the category of each tag (`"categories"`: general, character,
copyright, artist, meta from the posts' .json, rating for `rating:*`, unknown without metadata).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.data.files import atomic_write_json, atomic_write_text, read_json
from alti2v.data.layout import DataDir
from alti2v.data.posts import iter_posts
from alti2v.errors import PipelineError, one_line
from alti2v.progress import SILENT, Progress

log = logging.getLogger(__name__)


class VocabularyError(PipelineError):
    pass


def build_vocabulary(
    data: DataDir,
    vocab_size: int = defaults.VOCAB_SIZE,
    min_count: int = defaults.MIN_COUNT,
    filter_tag: str | None = None,
    progress: Progress = SILENT,
) -> dict:
    """Write vocab.txt and vocab.json for the posts under `data`; return the metadata."""
    if not data.imgs.is_dir():
        raise VocabularyError(
            f"{data.imgs}: no such folder; put posts there (danbooru_datasetgenerator.py) first"
        )
    counts: Counter[str] = Counter()
    recorded: dict[str, str] = {}
    problems: Counter[str] = Counter()  # files that could not be read, by reason
    num_posts = num_matched = 0
    for post in progress(iter_posts(data.imgs), desc="counting tags", unit=" posts"):
        num_posts += 1
        labels, unreadable = post.checked_labels()
        for problem in unreadable:
            log.warning("%s", problem)
            problems[problem.reason] += 1
        if labels is None or (filter_tag and filter_tag not in labels):
            continue
        num_matched += 1
        counts.update(labels)
        for tag, category in post.tag_categories().items():
            recorded.setdefault(tag, category)
    if not counts:
        raise VocabularyError(f"{data.imgs}: no tagged posts found (need <id>.txt beside images)")

    # Most frequent first; ties by name so the same data always gives the same file.
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = [(tag, count) for tag, count in ranked if count >= min_count][:vocab_size]
    if not kept:
        raise VocabularyError(f"no tag is on at least {min_count} posts; lower --min-count")
    tags = [tag for tag, _ in kept]
    meta = {
        "num_posts": num_posts,
        "num_posts_used": num_matched,
        "num_distinct_tags": len(counts),
        "num_tags": len(tags),
        "vocab_size": vocab_size,
        "min_count": min_count,
        "filter": filter_tag,
        "problems": dict(problems),
        "hash": vocabulary_hash(tags),
        "counts": dict(kept),
        "categories": {tag: category_of(tag, recorded) for tag in tags},
    }
    write_vocabulary(data.vocab, tags)
    atomic_write_json(data.vocab_meta, meta)
    return meta


def write_vocabulary(path: Path, tags: list[str]) -> None:
    """A vocab.txt: one tag a line, a tag's line number its label index."""
    atomic_write_text(path, "".join(f"{tag}\n" for tag in tags))


def load_vocabulary(
    path: Path,
    error: Callable[[str], Exception] = VocabularyError,
    fix: str = "run --maeshori again",
    missing: str | None = "no vocabulary; run --maeshori first",
) -> list[str]:
    """The tags of a vocab.txt (the data directory's by default, or a model's), in label order.
    An unreadable or empty file raises `error("PATH: ...; FIX")`; a missing one
    `error("PATH: MISSING")`, or is unreadable like any other when `missing` is None."""
    try:
        tags = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as cause:
        detail = missing if missing is not None else f"unreadable ({one_line(cause)}); {fix}"
        raise error(f"{path}: {detail}") from None
    except (OSError, ValueError) as cause:  # ValueError: not UTF-8
        raise error(f"{path}: unreadable ({one_line(cause)}); {fix}") from None
    if not tags:
        raise error(f"{path}: empty vocabulary; {fix}")
    return tags


def tag_index(tags: list[str]) -> dict[str, int]:
    """{tag: label index} of a vocabulary."""
    return {tag: position for position, tag in enumerate(tags)}


def label_indices(tags: Iterable[str], index: dict[str, int]) -> list[int]:
    """The label indices of those of `tags` in the vocabulary (`tag_index`), in their order."""
    return [index[tag] for tag in tags if tag in index]


def multi_hot(labels: list[list[int]], num_tags: int, dtype=np.float32) -> np.ndarray:
    """One row per post: 1 at each of its label indices, set in one assignment for them all."""
    targets = np.zeros((len(labels), num_tags), dtype=dtype)
    rows = np.repeat(np.arange(len(labels)), [len(row) for row in labels])
    targets[rows, np.fromiter(itertools.chain.from_iterable(labels), dtype=np.int64)] = 1
    return targets


def load_vocabulary_meta(path: Path) -> dict:
    """vocab.json (how the vocabulary was made); {} when there is none."""
    return read_json(path, VocabularyError, "run --maeshori again", missing={})


def vocabulary_hash(tags: list[str]) -> str:
    """A short fingerprint that changes whenever a tag or its index changes."""
    return hashlib.sha256("\n".join(tags).encode("utf-8")).hexdigest()[:16]


def built_with(db_meta: dict | None, tags: list[str]) -> bool:
    """Whether a database's meta record (`alti2v.data.records.read_meta`) says it was built
    with this vocabulary, so its label indices mean these tags."""
    return (db_meta or {}).get("vocab_hash") == vocabulary_hash(tags)


# Danbooru's tag categories (a post's .json has tag_string_<category> for the first five), plus
# "rating" for our rating:* tags and "unknown" for tags of posts without such metadata.
# --maeshori records {tag: category} as "categories" in vocab.json, and every exported model
# carries the same map in its model.json.
TAG_CATEGORIES = ("general", "character", "copyright", "artist", "meta", "rating", "unknown")


def category_of(tag: str, categories: dict[str, str]) -> str:
    """The category of `tag` given a recorded {tag: category} map (possibly empty)."""
    if tag.startswith("rating:"):
        return "rating"
    return categories.get(tag, "unknown")
