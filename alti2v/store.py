"""--build: decode every post once and pack pixels and labels into LevelDB; read them back.

Keys are `train/<post_id>` or `eval/<post_id>`, the split chosen by a hash of the post id, so a
post lands in the same split whatever the file order or the machine. Values are msgpack maps
(msgpack-numpy for the uint8 pixels). `meta` records what the records depend on: a different
vocabulary, image size or resize filter makes --build start the database over.

Every --build reconciles the database with imgs/: a record's `digest/<post_id>` holds a hash of
its image bytes, labels and decoding settings, so posts deleted, filtered out or left without a
vocabulary tag are removed, changed ones packed again, and ones moved to the other split by a
new --eval-fraction moved without decoding. Writes go in LevelDB write batches, each atomic and
holding all of one post's changes, so a killed build leaves only whole records, never a post in
both splits, and the next run does just what is left.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import msgpack_numpy
import numpy as np
import plyvel
from tqdm import tqdm

from alti2v import defaults
from alti2v.errors import PipelineError
from alti2v.images import ImageError, load_image
from alti2v.layout import TAGS_NOT_UTF8, DataDir, Post, iter_posts
from alti2v.vocabulary import load_vocabulary, load_vocabulary_meta, vocabulary_hash

log = logging.getLogger(__name__)

SPLITS = ("train", "eval")
META_KEY = b"meta"
# digest/<post_id> -> "<split> <content_digest hex>": tells whether a record exists and is
# current without reading its ~67 KB value.
DIGEST_PREFIX = b"digest/"
FORMAT = 2  # of the records; 2 added the digests, so a format-1 database is packed again
# Meta fields every record depends on: a change packs the whole database again.
RESET_FIELDS = ("format", "vocab_hash", "num_tags", "image_size", "resize", "max_pixels")
# Skip reasons that are inputs failing (each warned about); the others are the user's choices.
FAILED_INPUTS = frozenset({"no image", "unreadable", "oversized", "missing", TAGS_NOT_UTF8})
WRITE_BATCH_POSTS = 64  # posts per atomic LevelDB write: the most a kill can make us redo
MIN_POSTS_FOR_POOL = 64  # fewer are decoded in-process: starting workers costs about a second


class StoreError(PipelineError):
    pass


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


def record_key(split: str, post_id: str) -> bytes:
    return f"{split}/{post_id}".encode()


def pack_record(pixels: np.ndarray, labels: list[int]) -> bytes:
    return msgpack.packb({"image": pixels, "labels": labels}, default=msgpack_numpy.encode)


def unpack_record(value: bytes) -> tuple[np.ndarray, list[int]]:
    record = msgpack.unpackb(value, object_hook=msgpack_numpy.decode)
    return record["image"], record["labels"]


def open_db(path: Path, create: bool = False) -> plyvel.DB:
    if not create and not path.is_dir():
        raise StoreError(f"{path}: no dataset; run --build first")
    try:
        return plyvel.DB(str(path), create_if_missing=create)
    except plyvel.IOError as error:
        detail = error.args[0].decode(errors="replace") if error.args else str(error)
        if "already held" in detail:
            raise StoreError(f"{path}: in use by another alt_i2v.py; wait for it to end") from None
        raise StoreError(f"{path}: cannot open ({detail})") from None
    except plyvel.Error as error:
        raise StoreError(f"{path}: damaged database ({error}); delete it and run --build") from None


def read_meta(db: plyvel.DB, path: Path) -> dict | None:
    """The database's `meta` record (None in a new database); `path` names it in errors."""
    value = db.get(META_KEY)
    if value is None:
        return None
    try:
        meta = json.loads(value)
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise StoreError(f"{path}: damaged meta record; delete {path} and run --build")
    return meta


@dataclass
class _Plan:
    """What a build does to reconcile the database with imgs/."""

    # (split, post, label indices, digest) of each post to decode and store
    pack: list[tuple[str, Post, list[int], str]] = field(default_factory=list)
    move: list[tuple[str, str, str, str]] = field(default_factory=list)  # id, from, to, digest
    remove: set[str] = field(default_factory=set)  # post ids
    unchanged: int = 0
    repack: set[str] = field(default_factory=set)  # post ids of `pack` that had a record
    bad_json: int = 0  # posts kept without a rating: their .json is unreadable


def build_dataset(data: DataDir, settings: BuildSettings, quiet: bool = False) -> dict:
    """Make the database hold exactly the qualifying posts of imgs/, each packed from its
    current image and tags; return the run's counts."""
    tags = load_vocabulary(data.vocab)
    index = {tag: position for position, tag in enumerate(tags)}
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
    skipped: Counter[str] = Counter()
    try:
        # Until the build ends, --train refuses the database: it may hold both old and new.
        db.put(META_KEY, json.dumps({**wanted_meta, "complete": False}).encode())
        plan = _plan(db, data, index, filter_tag, settings, skipped, quiet)
        _remove_and_move(db, plan)
        packed = _pack(db, plan, settings, skipped, quiet)
        # A changed post that no longer decodes loses its old record too.
        removed = len(plan.remove) + len(plan.repack - packed)
        split_counts = count_records(db)
        db.put(META_KEY, json.dumps({**wanted_meta, "complete": True}).encode())
    finally:
        db.close()
    return {
        "packed": len(packed - plan.repack),
        "repacked": len(packed & plan.repack),
        "moved": len(plan.move),
        "removed": removed,
        "unchanged": plan.unchanged,
        "skipped": dict(skipped),
        "bad_json": plan.bad_json,
        "failed": plan.bad_json + sum(skipped[reason] for reason in FAILED_INPUTS),
        **{f"num_{split}": split_counts[split] for split in SPLITS},
    }


def _plan(
    db, data: DataDir, index: dict, filter_tag, settings: BuildSettings, skipped, quiet: bool
) -> _Plan:
    """Compare imgs/ with the records; reads only keys and the small digests, never a record."""
    stored = {
        key.removeprefix(DIGEST_PREFIX).decode(): value.decode().split(" ")
        for key, value in db.iterator(prefix=DIGEST_PREFIX)
    }
    records = {
        key.decode().partition("/")[2]: key.decode().partition("/")[0]
        for split in SPLITS
        for key in db.iterator(prefix=f"{split}/".encode(), include_value=False)
    }
    plan = _Plan()
    qualifying = set()
    posts = tqdm(iter_posts(data.imgs), desc="checking", unit=" posts", disable=quiet)
    for post in posts:
        labels = _qualifying_labels(post, index, filter_tag, skipped, plan)
        if labels is None:
            continue
        try:
            digest = content_digest(post.image.read_bytes(), labels, settings)
        except OSError as error:
            skipped["unreadable"] += 1
            log.warning("%s: cannot read (%s); skipped", post.image, error)
            continue
        qualifying.add(post.post_id)
        split = split_of(post.post_id, settings.eval_fraction)
        old_split = records.get(post.post_id)
        if stored.get(post.post_id) == [old_split, digest]:
            if old_split == split:
                plan.unchanged += 1
            else:  # --eval-fraction changed: the same record, under the other split
                plan.move.append((post.post_id, old_split, split, digest))
            continue
        plan.pack.append((split, post, labels, digest))
        if old_split is not None:
            plan.repack.add(post.post_id)
    plan.remove = (set(records) | set(stored)) - qualifying
    return plan


def _qualifying_labels(
    post: Post, index: dict, filter_tag, skipped: Counter, plan: _Plan
) -> list[int] | None:
    """The label indices of a post that belongs in the dataset, else None (counted)."""
    labels, problems = post.checked_labels()
    for problem in problems:
        log.warning("%s", problem)
    if labels is None:
        skipped[TAGS_NOT_UTF8] += 1
        return None
    plan.bad_json += bool(problems)
    indices = [index[label] for label in labels if label in index]
    if filter_tag and filter_tag not in labels:
        skipped["filtered out"] += 1
    elif post.image is None:
        skipped["no image"] += 1
        log.warning("%s: tags without an image beside them; skipped", post.tags_file)
    elif not indices:
        skipped["no vocabulary tag"] += 1
    else:
        return indices
    return None


def content_digest(image: bytes, labels: list[int], settings: BuildSettings) -> str:
    """What a record is made of: a changed image, label or decoding setting changes it."""
    digest = hashlib.sha256(image)
    digest.update(json.dumps([labels, settings.image_size, settings.resize]).encode())
    return digest.hexdigest()


def _remove_and_move(db: plyvel.DB, plan: _Plan) -> None:
    """Apply the plan's removals and split moves, in atomic batches."""
    with _Batches(db) as batches:
        for post_id in sorted(plan.remove):
            batch = batches.next()
            for split in SPLITS:
                batch.delete(record_key(split, post_id))
            batch.delete(DIGEST_PREFIX + post_id.encode())
        for post_id, old_split, new_split, digest in plan.move:
            batch = batches.next()
            batch.put(record_key(new_split, post_id), db.get(record_key(old_split, post_id)))
            batch.delete(record_key(old_split, post_id))
            batch.put(DIGEST_PREFIX + post_id.encode(), f"{new_split} {digest}".encode())


def _pack(db, plan: _Plan, settings: BuildSettings, skipped: Counter, quiet: bool) -> set[str]:
    """Decode and store the plan's posts; return the ids packed. A post that had a record in
    the other split loses it in the same atomic batch, so it is never in both."""
    packed = set()
    decoded = _decode_all([post.image for _, post, _, _ in plan.pack], settings)
    with (
        tqdm(total=len(plan.pack), desc="packing", unit=" img", disable=quiet) as progress,
        _Batches(db) as batches,
    ):
        for (split, post, labels, digest), pixels_or_error in zip(plan.pack, decoded, strict=True):
            progress.update()
            batch = batches.next()
            for stale_split in SPLITS:
                batch.delete(record_key(stale_split, post.post_id))
            batch.delete(DIGEST_PREFIX + post.post_id.encode())
            if isinstance(pixels_or_error, ImageError):
                skipped[pixels_or_error.reason] += 1
                log.warning("%s; skipped", pixels_or_error)
                continue
            batch.put(record_key(split, post.post_id), pack_record(pixels_or_error, labels))
            batch.put(DIGEST_PREFIX + post.post_id.encode(), f"{split} {digest}".encode())
            packed.add(post.post_id)
    return packed


class _Batches:
    """LevelDB write batches of WRITE_BATCH_POSTS posts each; the last one is written when the
    block ends, on Ctrl-C too, so what was decoded is kept."""

    def __init__(self, db: plyvel.DB):
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


def _decode(job: tuple[Path, BuildSettings]) -> np.ndarray | ImageError:
    path, settings = job
    try:
        return load_image(path, settings.image_size, settings.resize, settings.max_pixels)
    except ImageError as error:
        return error


def _decode_all(images: list[Path], settings: BuildSettings) -> Iterator:
    """Decoded arrays (or ImageErrors) in the order of `images`, decoded on all cores."""
    jobs = [(image, settings) for image in images]
    workers = settings.workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) < MIN_POSTS_FOR_POOL:
        yield from map(_decode, jobs)
        return
    # fork would copy the TensorFlow runtime if the caller already imported it; spawn is clean.
    with multiprocessing.get_context("spawn").Pool(workers, _ignore_ctrl_c) as pool:
        yield from pool.imap(_decode, jobs, chunksize=8)


def _ignore_ctrl_c() -> None:
    # Ctrl-C reaches every process of the terminal; the parent alone stops the build.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def count_records(db: plyvel.DB) -> dict[str, int]:
    # From the digests, written in the same atomic batch as their records: a key-only pass
    # over the records still reads every block of pixels (LevelDB keeps keys beside values).
    splits = Counter(
        value.split(b" ", 1)[0] for value in db.iterator(prefix=DIGEST_PREFIX, include_key=False)
    )
    return {split: splits[split.encode()] for split in SPLITS}


def record_keys(db: plyvel.DB, split: str) -> list[bytes]:
    """The keys of one split, in key order (deterministic; shuffling is the reader's job)."""
    return list(db.iterator(prefix=f"{split}/".encode(), include_value=False))


def contents_hash(db: plyvel.DB) -> str:
    """A hash of every record's content digest: changes when any post is packed anew."""
    digest = hashlib.sha256()
    for key, value in db.iterator(prefix=DIGEST_PREFIX):
        digest.update(key + b" " + value + b"\n")
    return digest.hexdigest()[:16]
