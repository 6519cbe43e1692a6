"""Import mode: a local folder of images with same-named `.txt` tag files, brought into the layout.

Tag files may be Danbooru's space-separated form or the comma-separated form of training sets
(`alti2v.data.posts.parse_tags` reads both). A `rating:<word>` tag becomes the post's rating
instead of a tag; without one, a same-stem `.json` beside the image (a post in this project's or
Danbooru's layout) gives its `rating` letter, and its `tag_string_<category>` fields come along,
so a folder in the data directory's own layout imports without losing ratings or categories.
New posts get ids after the largest id in `imgs/`; the image is hard-linked where the file
system allows, else copied. A file whose content md5 is already in `imgs/` is skipped as a
duplicate, so importing the same folder twice adds nothing. No network.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from alti2v.data.posts import IMAGE_EXTENSIONS, parse_tags, read_tags_file
from alti2v.data.skips import (
    CORRUPT,
    DUPLICATE_MD5,
    IMPORT_NO_IMAGE,
    NO_TAGS,
    NOT_IMAGE,
    TAGS_NOT_UTF8,
    UNREADABLE,
    InputError,
)
from alti2v.scrape.posts import (
    NOT_IMAGE_FILE_EXTS,
    PostStore,
    image_extension,
    link_or_copy,
    md5_hex,
)
from alti2v.scrape.state import Tally

log = logging.getLogger(__name__)

# `rating:<word>` tags of training sets, to today's letters; `safe` is the word from before 2022-05.
RATING_WORDS = {"general": "g", "sensitive": "s", "questionable": "q", "explicit": "e", "safe": "g"}
# A group of same-stem files is a candidate when it has one of these.
CANDIDATE_SUFFIXES = frozenset(
    {".txt", *IMAGE_EXTENSIONS, *(f".{ext}" for ext in NOT_IMAGE_FILE_EXTS)}
)


def source_groups(source_dir: Path) -> Iterator[dict[str, Path]]:
    """Files under `source_dir` grouped by folder and stem, as {lower-case suffix: file}."""
    groups: dict[Path, dict[str, Path]] = {}
    for path in sorted(source_dir.rglob("*")):
        if path.name.startswith(".") or not path.is_file():
            continue
        groups.setdefault(path.with_suffix(""), {})[path.suffix.lower()] = path
    for files in groups.values():
        if CANDIDATE_SUFFIXES.intersection(files):
            yield files


def split_rating(tags: list[str]) -> tuple[list[str], str | None, str | None]:
    """Tags without their `rating:` entries, the rating letter, and the word it came from."""
    rating = raw = None
    kept = []
    for tag in tags:
        word = tag.lower().removeprefix("rating:") if tag.lower().startswith("rating:") else None
        if word is None:
            kept.append(tag)
        elif word in RATING_WORDS:
            rating, raw = RATING_WORDS[word], word
    return kept, rating, raw


def sidecar_metadata(files: dict[str, Path]) -> dict:
    """The rating letter and tag categories of the group's `.json`, where it has one ({} when
    there is none; an unreadable one is named in a warning and left out)."""
    path = files.get(".json")
    if path is None:
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        log.warning("%s: unreadable (%s); imported without it", path, error)
        return {}
    if not isinstance(meta, dict):
        return {}
    kept = {key: value for key, value in meta.items()
            if key.startswith("tag_string_") and isinstance(value, str)}  # fmt: skip
    if meta.get("rating") in RATING_WORDS.values():
        kept["rating"] = meta["rating"]
    return kept


def import_one(
    files: dict[str, Path], source_dir: Path, store: PostStore, post_id: int
) -> tuple[str | None, int]:
    """Import one group as post `post_id`: (skip reason or None, bytes stored)."""
    image = next((files[extension] for extension in IMAGE_EXTENSIONS if extension in files), None)
    if image is None:
        has_other = any(f".{ext}" in files for ext in NOT_IMAGE_FILE_EXTS)
        return (NOT_IMAGE if has_other else IMPORT_NO_IMAGE), 0
    tags_file = files.get(".txt")
    if tags_file is None:
        return NO_TAGS, 0
    try:
        # Not UTF-8 is refused as --maeshori refuses it: decoding anyway garbles tag names.
        text = read_tags_file(tags_file)
        data = image.read_bytes()
    except InputError as error:
        log.warning("%s", error)
        return TAGS_NOT_UTF8, 0
    except OSError as error:
        log.warning("%s: unreadable (%s); skipped", error.filename or image, error)
        return UNREADABLE, 0
    md5 = md5_hex(data)
    if md5 in store.md5s:
        return DUPLICATE_MD5, 0
    extension = image_extension(data, full_check=True)
    if extension is None:
        log.warning("%s: not a decodable image; skipped", image)
        return CORRUPT, 0
    tags, rating, rating_raw = split_rating(parse_tags(text))
    sidecar = sidecar_metadata(files)
    if rating is None and "rating" in sidecar:
        rating = rating_raw = sidecar.pop("rating")
    sidecar.pop("rating", None)  # the .txt's rating tag wins
    metadata = {
        "id": post_id,
        "rating": rating,
        "rating_raw": rating_raw,
        "rating_scheme": "import",
        "md5": md5,
        "image_md5": md5,
        "file_ext": extension.lstrip("."),
        "file_size": len(data),
        "tag_string": " ".join(tags),
        "imported_from": str(image.relative_to(source_dir)),
        **sidecar,
    }
    store.write(post_id, extension, link_or_copy(image, data), metadata, tags)
    return None, len(data)


def import_folder(
    source_dir: Path,
    store: PostStore,
    tally: Tally,
    should_stop: Callable[[], bool],
    on_post: Callable[[], None],
) -> None:
    """Import every image with a tag file under `source_dir`, in path order."""
    next_id = max(store.ids, default=0) + 1
    for files in source_groups(source_dir):
        if should_stop():
            return
        tally.seen += 1
        reason, size = import_one(files, source_dir, store, next_id)
        if reason:
            tally.skip(reason)
        else:
            tally.downloaded += 1
            tally.bytes += size
            next_id += 1
        on_post()
