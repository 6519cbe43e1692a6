"""The LevelDB dataset's format: keys, values, the meta record, and reading them back.

Keys are `train/<post_id>` or `eval/<post_id>`; values are msgpack maps (msgpack-numpy for the
uint8 pixels). `digest/<post_id>` holds "<split> <content digest>" for every record, and `meta`
what the records depend on (`alti2v.data.build` writes them all).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import msgpack
import msgpack_numpy
import numpy as np

try:  # plyvel-next where plyvel has no wheel (Python 3.12 on, macOS, Windows): the same API
    import plyvel_next as plyvel
except ModuleNotFoundError:
    import plyvel

from alti2v.data.files import json_object
from alti2v.errors import PipelineError

SPLITS = ("train", "eval")
META_KEY = b"meta"
# digest/<post_id> -> "<split> <content_digest hex>": tells whether a record exists and is
# current without reading its ~67 KB value.
DIGEST_PREFIX = b"digest/"
FORMAT = 2  # of the records; 2 added the digests, so a format-1 database is packed again


class StoreError(PipelineError):
    pass


def record_key(split: str, post_id: str) -> bytes:
    return f"{split}/{post_id}".encode()


def parse_record_key(key: bytes) -> tuple[str, str]:
    """(split, post_id) of a record key: record_key's inverse."""
    split, _, post_id = key.decode().partition("/")
    return split, post_id


def digest_key(post_id: str) -> bytes:
    return DIGEST_PREFIX + post_id.encode()


def parse_digest_key(key: bytes) -> str:
    """The post_id of a digest key: digest_key's inverse."""
    return key.removeprefix(DIGEST_PREFIX).decode()


def digest_value(split: str, digest: str) -> bytes:
    return f"{split} {digest}".encode()


def parse_digest_value(value: bytes) -> tuple[str, str]:
    """(split, content digest) of a digest record: digest_value's inverse."""
    split, _, digest = value.decode().partition(" ")
    return split, digest


def pack_record(pixels: np.ndarray, labels: list[int]) -> bytes:
    return msgpack.packb({"image": pixels, "labels": labels}, default=msgpack_numpy.encode)


def unpack_record(value: bytes) -> tuple[np.ndarray, list[int]]:
    record = msgpack.unpackb(value, object_hook=msgpack_numpy.decode)
    return record["image"], record["labels"]


DB = plyvel.DB  # the one place that names the LevelDB binding; everything else imports it here


def open_db(path: Path, create: bool = False) -> DB:
    """The LevelDB at `path` (made when `create`), or a one-line StoreError saying what to do."""
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


def read_meta(db: DB, path: Path) -> dict | None:
    """The database's `meta` record (None in a new database); `path` names it in errors."""
    value = db.get(META_KEY)
    if value is None:
        return None
    try:
        return json_object(value)
    except ValueError:
        raise StoreError(f"{path}: damaged meta record; delete {path} and run --build") from None


def count_records(db: DB) -> dict[str, int]:
    # From the digests, written in the same atomic batch as their records: a key-only pass
    # over the records still reads every block of pixels (LevelDB keeps keys beside values).
    splits = Counter(
        parse_digest_value(value)[0]
        for value in db.iterator(prefix=DIGEST_PREFIX, include_key=False)
    )
    return {split: splits[split] for split in SPLITS}


def record_keys(db: DB, split: str) -> list[bytes]:
    """The keys of one split, in key order (deterministic; shuffling is the reader's job)."""
    return list(db.iterator(prefix=record_key(split, ""), include_value=False))


def contents_hash(db: DB) -> str:
    """A hash of every record's content digest: changes when any post is packed anew."""
    digest = hashlib.sha256()
    for key, value in db.iterator(prefix=DIGEST_PREFIX):
        digest.update(key + b" " + value + b"\n")
    return digest.hexdigest()[:16]


def sample_keys(keys: list[bytes], limit: int, seed: int) -> list[bytes]:
    """At most `limit` of `keys`, a seeded random choice kept in key order."""
    if len(keys) <= limit:
        return keys
    chosen = np.random.default_rng(seed).choice(len(keys), limit, replace=False)
    return [keys[index] for index in np.sort(chosen)]
