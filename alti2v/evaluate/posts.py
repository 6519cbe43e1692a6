"""The posts --eval scores, each decoded as every model it judges needs it.

The posts are the eval split of the LevelDB dataset (`Dataset`), or any folder in the data
layout (`folder_posts`, for --eval-dir). A model trained here reads the dataset's stored pixels;
a model whose input differs (a WD folder: 448, padded white, BGR) decodes the post's image file
its own way, with `alti2v.data.images.load_image` as --pred does; an eval record's file is
`imgs/<post id>.<extension>`, the post --build packed it from. A post that one of them cannot
read is a `Skip` for all of them, named once: the models are compared on the same posts.

The truth of a post is the keys of its tags (`alti2v.evaluate.names`): the dataset's labels on
the eval split, the .txt's tags (and the .json's rating) with --eval-dir.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alti2v.data.images import InputSpec
from alti2v.data.layout import DataDir
from alti2v.data.posts import find_image, iter_posts
from alti2v.data.records import (
    open_db,
    parse_record_key,
    read_meta,
    record_keys,
    sample_keys,
    unpack_record,
)
from alti2v.data.skips import NO_IMAGE, NO_VOCABULARY_TAG, InputError
from alti2v.data.vocabulary import built_with, load_vocabulary, load_vocabulary_meta
from alti2v.errors import PipelineError
from alti2v.evaluate.names import truth_key
from alti2v.model.saved import LoadedModel

log = logging.getLogger(__name__)


class EvalError(PipelineError):
    pass


@dataclass(frozen=True)
class EvalPost:
    post_id: str
    source: bytes | Path  # its LevelDB key or its image file, to show it in the gallery
    truth: list[str]  # the keys of its true tags
    pixels: dict[InputSpec, np.ndarray]  # as each spec asked for decodes it


@dataclass(frozen=True)
class Skip:
    """A post that cannot be scored: why (a short key for the counts) and what to log."""

    reason: str
    message: str | None


def decoded(
    post_id: str,
    source: bytes | Path,
    truth: list[str],
    image: Path | None,
    pixels: dict[InputSpec, np.ndarray],
    specs: set[InputSpec],
    missing: str,
) -> EvalPost | Skip:
    """The post with its pixels in every spec of `specs` (those in `pixels` already given),
    or the Skip of the first that fails; `missing` says why a post has no `image`."""
    pixels = dict(pixels)
    for spec in specs:
        if spec in pixels:
            continue
        if image is None:
            return Skip(NO_IMAGE, missing)
        try:
            pixels[spec] = spec.load(image)
        except InputError as error:
            return Skip(error.reason, str(error))
    return EvalPost(post_id, source, truth, pixels)


@dataclass(frozen=True)
class DatasetVocabulary:
    """The vocabulary the dataset's labels mean, with each tag's category."""

    tags: list[str]
    categories: dict[str, str]  # tag -> category, as vocab.json and model.json record them

    @property
    def keys(self) -> list[str]:
        return [truth_key(tag) for tag in self.tags]


class Dataset:
    """The LevelDB dataset, when its vocabulary is known: the eval split's posts, and the
    training posts the baselines learn from."""

    def __init__(self, db, keys: list[bytes], vocabulary: DatasetVocabulary | None,
                 spec: InputSpec | None):  # fmt: skip
        self.db = db
        self.keys = keys
        self.vocabulary = vocabulary
        self.spec = spec  # how its pixels were made

    @property
    def available(self) -> bool:
        return bool(self.keys)

    @classmethod
    def open(cls, data: DataDir, models: list[LoadedModel], required: bool) -> Dataset:
        """The dataset of `data`, if its vocabulary is known. A single model from --train is
        judged on the dataset it was trained on, as ever; a WD folder, or several models, on
        the dataset of vocab.txt (or of any of them that was trained on it)."""
        if not required and not data.db.is_dir():
            log.warning("%s: no dataset, so no baselines (they learn from its training posts)",
                        data.db)  # fmt: skip
            return cls(None, [], None, None)
        db = open_db(data.db)
        meta = read_meta(db, data.db)
        candidates, theirs = _candidates(data, models)
        vocabulary = next((known for known in candidates if built_with(meta, known.tags)), None)
        if vocabulary is None:
            db.close()
            if required:
                raise EvalError(
                    f"{data.db} was built with another vocabulary than {theirs}; give the "
                    "--model trained on it, or run --build again"
                )
            log.warning("%s: another vocabulary than %s, so no baselines", data.db, theirs)
            return cls(None, [], None, None)
        return cls(db, record_keys(db, "train"), vocabulary, InputSpec.of_database(meta))

    def eval_posts(self, data: DataDir, specs: set[InputSpec]) -> tuple[Iterator, int]:
        """The eval split's posts (or Skips), and their number."""
        keys = record_keys(self.db, "eval")
        if not keys:
            raise EvalError(
                f"{data.db} has no eval posts; run --build with --eval-fraction above 0, or "
                "give --eval-dir DIR"
            )
        truth_keys = self.vocabulary.keys
        decodes_files = bool(specs - {self.spec})

        def read() -> Iterator[EvalPost | Skip]:
            for key in keys:
                pixels, labels = unpack_record(self.db.get(key))
                post_id = parse_record_key(key)[1]
                image = find_image(data.imgs, post_id) if decodes_files else None
                missing = f"{data.imgs / post_id}: no image file for this eval post in imgs/"
                truth = [truth_keys[label] for label in labels]
                yield decoded(post_id, key, truth, image, {self.spec: pixels}, specs, missing)

        return read(), len(keys)

    def records(self, keys: list[bytes]) -> Iterator[tuple[np.ndarray, list[int]]]:
        """(pixels, labels) of each record of `keys`."""
        for key in keys:
            yield unpack_record(self.db.get(key))

    def sample(self, limit: int, seed: int) -> list[bytes]:
        """At most `limit` training keys, a seeded random choice kept in key order."""
        return sample_keys(self.keys, limit, seed)

    def counts(self, num_tags: int) -> np.ndarray:
        """Training posts per tag of its vocabulary (zeros without a dataset)."""
        counts = np.zeros(num_tags, dtype=np.int64)
        for _, labels in self.records(self.keys):
            counts[labels] += 1
        return counts

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def _candidates(data: DataDir, models: list[LoadedModel]) -> tuple[list, str]:
    """The vocabularies the dataset may have been built with, and their names for an error:
    the models' from --train, and, unless a single such model is judged, vocab.txt's."""
    trained = [model for model in models if model.info.get("layout") != "wd"]
    candidates = [DatasetVocabulary(model.tags, model.info.get("categories", {}))
                  for model in trained]  # fmt: skip
    if len(models) == 1 and trained:
        return candidates, "the model's"
    if data.vocab.is_file():
        categories = load_vocabulary_meta(data.vocab_meta).get("categories", {})
        candidates.append(DatasetVocabulary(load_vocabulary(data.vocab, EvalError), categories))
    return candidates, f"{data.vocab}'s" + (" or a --model's from --train" if trained else "")


def folder_posts(folder: Path, specs: set[InputSpec],
                 scorable: Callable[[list[str]], bool]) -> tuple[Iterator, int]:  # fmt: skip
    """The posts of an --eval-dir (or Skips), and their number; a post none of whose tags
    `scorable` accepts is skipped as having no vocabulary tag."""
    if not folder.is_dir():
        raise EvalError(f"--eval-dir {folder}: no such folder")
    posts = list(iter_posts(folder))
    if not posts:
        raise EvalError(
            f"--eval-dir {folder}: no tagged posts (need <id>.txt beside each image); "
            "an --eval-dir needs the true tags to score against"
        )

    def read() -> Iterator[EvalPost | Skip]:
        for post in posts:
            truth = [truth_key(tag) for tag in post.labels()]
            if post.image is None:
                yield Skip(NO_IMAGE, f"{post.tags_file}: tags without an image")
            elif not scorable(truth):
                yield Skip(NO_VOCABULARY_TAG, None)
            else:
                yield decoded(post.post_id, post.image, truth, post.image, {}, specs, "")

    return read(), len(posts)
