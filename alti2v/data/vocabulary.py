"""--maeshori: count tags over the data directory and keep the most frequent as the vocabulary.

The vocabulary is `vocab.txt`, one tag per line; a tag's line number is its label index
everywhere (LevelDB, the model's outputs, the copy saved beside every model). `vocab.json` beside
it records how it was made, and the category of each tag (`"categories"`: general, character,
copyright, artist, meta from the posts' .json, rating for `rating:*`, unknown without metadata).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from alti2v import defaults
from alti2v.errors import PipelineError, one_line
from alti2v.data.layout import DataDir
from alti2v.data.files import atomic_write_json, atomic_write_text
from alti2v.data.posts import iter_posts

log = logging.getLogger(__name__)


class VocabularyError(PipelineError):
    pass


def build_vocabulary(
    data: DataDir,
    vocab_size: int = defaults.VOCAB_SIZE,
    min_count: int = defaults.MIN_COUNT,
    filter_tag: str | None = None,
    quiet: bool = False,
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
    for post in tqdm(iter_posts(data.imgs), desc="counting tags", unit=" posts", disable=quiet):
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
    atomic_write_text(data.vocab, "".join(f"{tag}\n" for tag in tags))
    atomic_write_json(data.vocab_meta, meta)
    return meta


def load_vocabulary(path: Path) -> list[str]:
    try:
        tags = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise VocabularyError(f"{path}: no vocabulary; run --maeshori first") from None
    except (OSError, ValueError) as error:  # ValueError: not UTF-8
        raise VocabularyError(
            f"{path}: unreadable ({one_line(error)}); run --maeshori again"
        ) from None
    if not tags:
        raise VocabularyError(f"{path}: empty vocabulary; run --maeshori again")
    return tags


def load_vocabulary_meta(path: Path) -> dict:
    """vocab.json (how the vocabulary was made); {} when there is none."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise VocabularyError(
            f"{path}: unreadable ({one_line(error)}); run --maeshori again"
        ) from None
    if not isinstance(meta, dict):
        raise VocabularyError(f"{path}: not a JSON object; run --maeshori again")
    return meta


def vocabulary_hash(tags: list[str]) -> str:
    """A short fingerprint that changes whenever a tag or its index changes."""
    return hashlib.sha256("\n".join(tags).encode("utf-8")).hexdigest()[:16]


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
