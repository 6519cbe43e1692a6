"""--build: decode every post once and pack pixels and labels into LevelDB; read them back.

Keys are `train/<post_id>` or `eval/<post_id>`, the split chosen by a hash of the post id, so a
post lands in the same split whatever the file order or the machine. Values are msgpack maps
(msgpack-numpy for the uint8 pixels). `meta` records what the records depend on: a different
vocabulary, image size or resize filter makes --build start the database over.
Writes go in LevelDB write batches, each atomic, so a killed build leaves only whole records and
the next run packs just the posts that are missing.
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
from dataclasses import dataclass
from pathlib import Path

import msgpack
import msgpack_numpy
import numpy as np
import plyvel
from tqdm import tqdm

from alti2v import defaults
from alti2v.errors import PipelineError
from alti2v.images import ImageError, load_image
from alti2v.layout import DataDir, Post, iter_posts
from alti2v.vocabulary import load_vocabulary, vocabulary_hash

log = logging.getLogger(__name__)

SPLITS = ("train", "eval")
META_KEY = b"meta"
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


def read_meta(db: plyvel.DB) -> dict | None:
    value = db.get(META_KEY)
    return json.loads(value) if value else None


def build_dataset(data: DataDir, settings: BuildSettings, quiet: bool = False) -> dict:
    """Pack every post under `data` that is not packed yet; return the run's counts."""
    tags = load_vocabulary(data.vocab)
    index = {tag: position for position, tag in enumerate(tags)}
    filter_tag = (
        json.loads(data.vocab_meta.read_text()).get("filter") if data.vocab_meta.exists() else None
    )
    wanted_meta = {
        "vocab_hash": vocabulary_hash(tags),
        "num_tags": len(tags),
        "image_size": settings.image_size,
        "resize": settings.resize,
        "eval_fraction": settings.eval_fraction,
    }
    _reset_if_stale(data.db, wanted_meta)
    db = open_db(data.db, create=True)
    skipped: Counter[str] = Counter()
    packed = already = 0
    try:
        db.put(META_KEY, json.dumps(wanted_meta).encode())
        todo = []
        for post in iter_posts(data.imgs):
            labels = [index[label] for label in post.labels() if label in index]
            key = record_key(split_of(post.post_id, settings.eval_fraction), post.post_id)
            if filter_tag and filter_tag not in post.labels():
                skipped["filtered out"] += 1
            elif post.image is None:
                skipped["no image"] += 1
                log.warning("%s: tags without an image beside them; skipped", post.tags_file)
            elif not labels:
                skipped["no vocabulary tag"] += 1
            elif db.get(key) is not None:
                already += 1
            else:
                todo.append((key, post, labels))
        decoded = _decode_all(todo, settings)
        batch = db.write_batch()
        pending = 0
        with tqdm(total=len(todo), desc="packing", unit=" img", disable=quiet) as progress:
            try:
                for (key, _post, labels), pixels_or_error in zip(todo, decoded, strict=True):
                    progress.update()
                    if isinstance(pixels_or_error, ImageError):
                        skipped[pixels_or_error.reason] += 1
                        log.warning("%s; skipped", pixels_or_error)
                        continue
                    batch.put(key, pack_record(pixels_or_error, labels))
                    packed += 1
                    pending += 1
                    if pending == WRITE_BATCH_POSTS:
                        batch.write()
                        batch, pending = db.write_batch(), 0
            finally:
                batch.write()  # on Ctrl-C too: what was decoded is kept
        split_counts = count_records(db)
    finally:
        db.close()
    return {
        "packed": packed,
        "already_packed": already,
        "skipped": dict(skipped),
        **{f"num_{split}": split_counts[split] for split in SPLITS},
    }


def _reset_if_stale(path: Path, wanted_meta: dict) -> None:
    if not path.is_dir():
        return
    db = open_db(path)
    try:
        meta = read_meta(db)
    finally:
        db.close()
    if meta is None or meta == wanted_meta:
        return
    changed = ", ".join(name for name in wanted_meta if meta.get(name) != wanted_meta[name])
    log.warning("%s: %s changed since it was built; packing it again", path, changed)
    shutil.rmtree(path)


def _decode(job: tuple[Path, BuildSettings]) -> np.ndarray | ImageError:
    path, settings = job
    try:
        return load_image(path, settings.image_size, settings.resize, settings.max_pixels)
    except ImageError as error:
        return error


def _decode_all(todo: list[tuple[bytes, Post, list[int]]], settings: BuildSettings) -> Iterator:
    """Decoded arrays (or ImageErrors) in the order of `todo`, decoded on all cores."""
    jobs = [(post.image, settings) for _, post, _ in todo]
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
    return {
        split: sum(1 for _ in db.iterator(prefix=f"{split}/".encode(), include_value=False))
        for split in SPLITS
    }


def record_keys(db: plyvel.DB, split: str) -> list[bytes]:
    """The keys of one split, in key order (deterministic; shuffling is the reader's job)."""
    return list(db.iterator(prefix=f"{split}/".encode(), include_value=False))
