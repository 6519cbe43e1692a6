"""--build: decode every post once and pack pixels and labels into LevelDB (`alti2v.data.records`).

A post's split is chosen by a hash of its id, so a post lands in the same split whatever the
file order or the machine. The `meta` record holds what the records depend on: a different
vocabulary, image size or resize filter makes --build start the database over.

Every --build reconciles the database with imgs/: a record's `digest/<post_id>` holds a hash of
its image bytes, labels and decoding settings, so posts deleted, filtered out or left without a
vocabulary tag are removed, changed ones packed again, and ones moved to the other split by a
new --eval-fraction moved without decoding. Writes go in LevelDB write batches, each atomic and
holding all of one post's changes, so a killed build leaves only whole records, never a post in
both splits, and the next run does just what is left.

The build streams: it checks and packs CHUNK_POSTS posts at a time, then removes the records of
posts gone from imgs/ in one pass over the digests, so its memory does not grow with the posts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path


from alti2v import defaults
from alti2v.data.images import load_image_or_error
from alti2v.data.layout import DataDir, PostFiles
from alti2v.data.posts import Post, iter_posts
from alti2v.data.records import (
    DB,
    DIGEST_PREFIX,
    FORMAT,
    META_KEY,
    SPLITS,
    count_records,
    digest_key,
    digest_value,
    open_db,
    pack_record,
    parse_digest_key,
    parse_digest_value,
    read_meta,
    record_key,
)
from alti2v.data.skips import (
    FILTERED_OUT,
    NO_IMAGE,
    NO_VOCABULARY_TAG,
    TAGS_NOT_UTF8,
    UNREADABLE,
    InputError,
    failed_inputs,
)
from alti2v.data.vocabulary import (
    label_indices,
    load_vocabulary,
    load_vocabulary_meta,
    tag_index,
    vocabulary_hash,
)
from alti2v.progress import SILENT, Progress

log = logging.getLogger(__name__)

# Meta fields every record depends on: a change packs the whole database again.
RESET_FIELDS = ("format", "vocab_hash", "num_tags", "image_size", "resize", "max_pixels")
WRITE_BATCH_POSTS = 64  # posts per atomic LevelDB write: the most a kill can make us redo
MIN_POSTS_FOR_POOL = 64  # fewer are decoded in-process: starting workers costs about a second
# Posts checked, then decoded and stored, at a time: the build holds one chunk's plans (about
# 4 KB a post: paths, labels, digest) and at most its decoded pixels (67 KB a post, when LevelDB
# writes slower than the workers decode) whatever the number of posts.
CHUNK_POSTS = 64


@dataclass(frozen=True)
class BuildSettings:
    image_size: int = defaults.IMAGE_SIZE
    resize: str = defaults.RESIZE
    eval_fraction: float = defaults.EVAL_FRACTION
    max_pixels: int = defaults.MAX_PIXELS
    workers: int = defaults.BUILD_WORKERS


def split_of(post_id: str, eval_fraction: float) -> str:
    """`eval` for a fixed, id-determined share of posts, `train` for the rest."""
    digest = hashlib.sha256(post_id.encode("utf-8")).digest()
    return "eval" if int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction else "train"


@dataclass
class _Counts:
    """What a build did, counted as it streams."""

    packed: int = 0
    repacked: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    bad_json: int = 0  # posts kept without a rating: their .json is unreadable
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _ToPack:
    """A post to decode and store, and whether it replaces a record."""

    split: str
    post: Post
    labels: list[int]
    digest: str
    had_record: bool


def build_dataset(data: DataDir, settings: BuildSettings, progress: Progress = SILENT) -> dict:
    """Make the database hold exactly the qualifying posts of imgs/, each packed from its
    current image and tags; return the run's counts."""
    tags = load_vocabulary(data.vocab)
    index = tag_index(tags)
    filter_tag = load_vocabulary_meta(data.vocab_meta).get("filter")
    wanted_meta = {
        "format": FORMAT,
        "vocab_hash": vocabulary_hash(tags),
        "num_tags": len(tags),
        "image_size": settings.image_size,
        "resize": settings.resize,
        "max_pixels": settings.max_pixels,
        "eval_fraction": settings.eval_fraction,
        "filter": filter_tag,
    }
    _reset_if_stale(data.db, wanted_meta)
    db = open_db(data.db, create=True)
    counts = _Counts()
    try:
        # Until the build ends, --train refuses the database: it may hold both old and new.
        db.put(META_KEY, json.dumps({**wanted_meta, "complete": False}).encode())
        with (
            progress(desc="checking", unit=" posts") as checking,
            progress(total=0, desc="packing", unit=" img") as packing,
            _Decoder(settings) as decoder,
            _Batches(db) as batches,
        ):
            for posts in _chunks(iter_posts(data.imgs), CHUNK_POSTS):
                checking.update(len(posts))
                to_pack = _check(db, batches, posts, index, filter_tag, settings, counts)
                packing.total += len(to_pack)
                packing.refresh()
                decoded = decoder.decode([item.post.image for item in to_pack])
                _store(batches, to_pack, decoded, counts, packing)
        # After the batches above are written, so the pass sees what this build removed.
        _remove_vanished(db, data.imgs, counts)
        split_counts = count_records(db)
        db.put(META_KEY, json.dumps({**wanted_meta, "complete": True}).encode())
    finally:
        db.close()
    return {
        "packed": counts.packed,
        "repacked": counts.repacked,
        "moved": counts.moved,
        "removed": counts.removed,
        "unchanged": counts.unchanged,
        "skipped": dict(counts.skipped),
        "bad_json": counts.bad_json,
        "failed": counts.bad_json + failed_inputs(counts.skipped),
        **{f"num_{split}": split_counts[split] for split in SPLITS},
    }


def _chunks(posts: Iterable[Post], size: int) -> Iterator[list[Post]]:
    posts = iter(posts)
    while chunk := list(islice(posts, size)):
        yield chunk


def _check(
    db, batches: _Batches, posts: list[Post], index: dict, filter_tag, settings, counts: _Counts
) -> list[_ToPack]:
    """Compare a chunk of posts with their digests: remove the records of posts that no longer
    qualify, move those whose split changed (no decoding) and return those to decode. Reads
    only the small digests, never a record."""
    to_pack = []
    for post in posts:
        stored = db.get(digest_key(post.post_id))
        old_split, old_digest = parse_digest_value(stored) if stored else (None, None)
        digest = None
        labels = _qualifying_labels(post, index, filter_tag, counts)
        if labels is not None:
            try:
                digest = content_digest(post.image.read_bytes(), labels, settings)
            except OSError as error:
                counts.skipped[UNREADABLE] += 1
                log.warning("%s: cannot read (%s); skipped", post.image, error)
        if digest is None:
            if stored is not None:
                _delete_post(batches.next(), post.post_id)
                counts.removed += 1
            continue
        split = split_of(post.post_id, settings.eval_fraction)
        if digest != old_digest:
            to_pack.append(_ToPack(split, post, labels, digest, stored is not None))
        elif old_split == split:
            counts.unchanged += 1
        else:  # --eval-fraction changed: the same record, under the other split
            batch = batches.next()
            batch.put(record_key(split, post.post_id), db.get(record_key(old_split, post.post_id)))
            batch.delete(record_key(old_split, post.post_id))
            batch.put(digest_key(post.post_id), digest_value(split, digest))
            counts.moved += 1
    return to_pack


def _remove_vanished(db: DB, imgs: Path, counts: _Counts) -> None:
    """Remove the records of posts whose .txt is gone from imgs/. Posts still there were
    checked, and removed if they no longer qualify; this pass holds nothing per post, where a
    set of the ids seen would grow with imgs/."""
    with _Batches(db) as batches:
        # The iterator reads a snapshot, so the deletions below do not disturb it.
        for key in db.iterator(prefix=DIGEST_PREFIX, include_value=False):
            post_id = parse_digest_key(key)
            if not PostFiles(imgs, post_id).tags.exists():
                _delete_post(batches.next(), post_id)
                counts.removed += 1


def _delete_post(batch, post_id: str) -> None:
    for split in SPLITS:
        batch.delete(record_key(split, post_id))
    batch.delete(digest_key(post_id))


def _qualifying_labels(post: Post, index: dict, filter_tag, counts: _Counts) -> list[int] | None:
    """The label indices of a post that belongs in the dataset, else None (counted)."""
    labels, problems = post.checked_labels()
    for problem in problems:
        log.warning("%s", problem)
    if labels is None:
        counts.skipped[TAGS_NOT_UTF8] += 1
        return None
    counts.bad_json += bool(problems)
    indices = label_indices(labels, index)
    if filter_tag and filter_tag not in labels:
        counts.skipped[FILTERED_OUT] += 1
    elif post.image is None:
        counts.skipped[NO_IMAGE] += 1
        log.warning("%s: tags without an image beside them; skipped", post.tags_file)
    elif not indices:
        counts.skipped[NO_VOCABULARY_TAG] += 1
    else:
        return indices
    return None


def content_digest(image: bytes, labels: list[int], settings: BuildSettings) -> str:
    """What a record is made of: a changed image, label or decoding setting changes it."""
    digest = hashlib.sha256(image)
    digest.update(json.dumps([labels, settings.image_size, settings.resize]).encode())
    return digest.hexdigest()


def _store(
    batches: _Batches, to_pack: list[_ToPack], decoded: Iterator, counts: _Counts, progress
) -> None:
    """Store the decoded posts of a chunk. A post that had a record in the other split loses
    it in the same atomic batch, so it is never in both; one that no longer decodes loses it."""
    for item, pixels_or_error in zip(to_pack, decoded, strict=True):
        progress.update()
        post_id = item.post.post_id
        batch = batches.next()
        _delete_post(batch, post_id)
        if isinstance(pixels_or_error, InputError):
            counts.skipped[pixels_or_error.reason] += 1
            counts.removed += item.had_record
            log.warning("%s; skipped", pixels_or_error)
            continue
        batch.put(record_key(item.split, post_id), pack_record(pixels_or_error, item.labels))
        batch.put(digest_key(post_id), digest_value(item.split, item.digest))
        if item.had_record:
            counts.repacked += 1
        else:
            counts.packed += 1


class _Batches:
    """LevelDB write batches of WRITE_BATCH_POSTS posts each; the last one is written when the
    block ends, on Ctrl-C too, so what was decoded is kept."""

    def __init__(self, db: DB):
        self.db = db
        self.batch = db.write_batch()
        self.posts = 0

    def __enter__(self) -> _Batches:
        return self

    def next(self):
        """The batch for the next post (all of one post's writes go into one batch)."""
        if self.posts == WRITE_BATCH_POSTS:
            self.batch.write()
            self.batch, self.posts = self.db.write_batch(), 0
        self.posts += 1
        return self.batch

    def __exit__(self, *exc_info) -> None:
        self.batch.write()


def _reset_if_stale(path: Path, wanted_meta: dict) -> None:
    """Start over when every record would change anyway (vocabulary, size, filter of pixels)."""
    if not path.is_dir():
        return
    db = open_db(path)
    try:
        meta = read_meta(db, path)
    finally:
        db.close()
    changed = [name for name in RESET_FIELDS if (meta or {}).get(name) != wanted_meta[name]]
    if meta is None or not changed:
        return
    log.warning("%s: %s changed since it was built; packing it again", path, ", ".join(changed))
    shutil.rmtree(path)


class _Decoder:
    """Decodes images on all cores through one pool for the whole build, started by the first
    chunk with enough posts to pay for it (starting workers costs about a second)."""

    def __init__(self, settings: BuildSettings):
        self.settings = settings
        self.workers = settings.workers or os.cpu_count() or 1
        self.pool = None

    def __enter__(self) -> _Decoder:
        return self

    def decode(self, images: list[Path]) -> Iterator:
        """Decoded arrays (or InputErrors) in the order of `images`."""
        settings = self.settings
        decode = functools.partial(
            load_image_or_error, image_size=settings.image_size, resize=settings.resize,
            max_pixels=settings.max_pixels,
        )  # fmt: skip
        if self.pool is None and (self.workers == 1 or len(images) < MIN_POSTS_FOR_POOL):
            return map(decode, images)
        if self.pool is None:
            # fork would copy the TensorFlow runtime if the caller imported it; spawn is clean.
            context = multiprocessing.get_context("spawn")
            self.pool = context.Pool(self.workers, _ignore_ctrl_c)
        return self.pool.imap(decode, images)

    def __exit__(self, *exc_info) -> None:
        if self.pool is not None:
            self.pool.terminate()


def _ignore_ctrl_c() -> None:
    # Ctrl-C reaches every process of the terminal; the parent alone stops the build.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
