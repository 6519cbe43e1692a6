"""Posts on disk: the skip rules, and writing a post atomically (`PostStore`).

A post is written as `imgs/<id>.<ext>`, then `imgs/<id>.json`, then `imgs/<id>.txt`, each under a
temporary name renamed into place, so the pipeline sees a post exactly when its `.txt` exists.
Names come only from the numeric id and an extension chosen from the image's decoded format,
never from anything the server sends. The state that makes runs resume (`scrape-state.json`,
`.scrape.lock`) is `alti2v.scrape.state`'s.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from alti2v.data.files import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from alti2v.data.layout import DataDir, PostFiles
from alti2v.data.posts import IMAGE_EXTENSIONS
from alti2v.data.skips import (
    CORRUPT,
    DELETED,
    DOWNLOAD_FAILED,
    NO_FILE,
    NOT_IMAGE,
    UNSUPPORTED_TYPE,
)
from alti2v.scrape import ScrapeError

log = logging.getLogger(__name__)

# The decoded format decides the extension on disk; anything else is not stored.
FORMAT_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}
# Post file types we can train on, as Danbooru spells `file_ext`.
IMAGE_FILE_EXTS = frozenset({"jpg", "jpeg", "png", "webp", "gif", "bmp"})
# Animations and archives (ugoira is a zip of frames): skipped as `not_image`; any other type
# is skipped as `unsupported_type`.
NOT_IMAGE_FILE_EXTS = frozenset({"mp4", "webm", "zip", "swf"})

# Skip reasons that may be transient (a file the site failed to serve, or served damaged): the
# post is recorded in the state and retried by later runs instead of being passed over for good.
RETRYABLE_REASONS = frozenset({DOWNLOAD_FAILED, CORRUPT})

# Puts an image at the path it is given, atomically.
ImageWriter = Callable[[Path], None]


@dataclass
class Candidate:
    """One post as a site describes it, before the skip rules and the download."""

    post_id: int
    tags: list[str]
    metadata: dict[str, object]  # what goes into the .json; `rating` in today's meaning
    file_ext: str  # the post's own file type, as the site says
    image_url: str | None  # the chosen variant; None when the site hides the file
    md5: str | None  # of the original file
    image_is_original: bool  # so the md5 can be checked after the download
    is_deleted: bool = False


def skip_reason(candidate: Candidate, include_deleted: bool) -> str | None:
    """Why a post from the site is not downloaded, judged before any request for its file."""
    if candidate.image_url is None or not candidate.md5:
        return NO_FILE  # banned or restricted: the site hides file_url and md5
    if candidate.is_deleted and not include_deleted:
        return DELETED
    file_ext = candidate.file_ext.lower()
    if file_ext in NOT_IMAGE_FILE_EXTS:
        return NOT_IMAGE
    if file_ext not in IMAGE_FILE_EXTS:
        return UNSUPPORTED_TYPE
    return None


def image_extension(data: bytes, full_check: bool) -> str | None:
    """The extension for these bytes from their decoded format, or None if they are no image.

    `full_check` decodes every pixel (catching truncated files); without it only the header is
    read, for originals whose md5 already proved the bytes whole.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            extension = FORMAT_EXTENSIONS.get(image.format or "")
            if full_check:
                image.load()
    # UnidentifiedImageError is an OSError; some decoders raise SyntaxError or ValueError.
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        log.debug("undecodable image: %s", error)
        return None
    return extension if extension in IMAGE_EXTENSIONS else None


_NO_MD5 = "its md5 is not used for duplicates"


class PostStore:
    """The posts under `<data-dir>/imgs/`: which ids and md5s are there, and writing new ones."""

    def __init__(self, data_dir: Path) -> None:
        self.imgs = DataDir(data_dir).imgs
        self.imgs.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.imgs)
        self.ids = {int(path.stem) for path in self.imgs.glob("*.txt") if path.stem.isdigit()}
        self.md5s = self._index_md5s()

    def _index_md5s(self) -> set[str]:
        md5s = set()
        for post_id in self.ids:
            meta_file = PostFiles(self.imgs, str(post_id)).meta
            try:  # the layout allows posts without a .json
                meta = read_json(meta_file, ScrapeError, _NO_MD5, missing={})
            except ScrapeError as error:
                log.warning("%s", error)
                continue
            md5s.update(str(meta[key]) for key in ("md5", "image_md5") if meta.get(key))
        return md5s

    def write(
        self,
        post_id: int,
        extension: str,
        write_image: ImageWriter,
        metadata: dict[str, object],
        tags: list[str],
    ) -> None:
        """Store one post: `write_image(path)` puts the image in place atomically, then the
        .json and the .txt follow, in that order."""
        if extension not in IMAGE_EXTENSIONS:
            raise ValueError(f"extension {extension!r} is not an image extension")
        # Leftovers of a run killed before this post's .txt: another extension would shadow it.
        files = PostFiles(self.imgs, str(post_id))
        for other in IMAGE_EXTENSIONS:
            if other != extension:
                files.image(other).unlink(missing_ok=True)
        write_image(files.image(extension))
        atomic_write_json(files.meta, metadata)
        atomic_write_text(files.tags, " ".join(tags) + "\n")
        self.ids.add(post_id)
        self.md5s.update(str(metadata[key]) for key in ("md5", "image_md5") if metadata.get(key))


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files a killed run left (layout's `.<name>.<random>.tmp`)."""
    for path in folder.glob(".*.tmp"):
        log.info("removing %s, left by an interrupted run", path.name)
        path.unlink(missing_ok=True)


def write_bytes(data: bytes) -> ImageWriter:
    """A `write_image` for PostStore.write that writes downloaded bytes."""
    return lambda destination: atomic_write_bytes(destination, data)


def link_or_copy(source: Path, data: bytes) -> ImageWriter:
    """A `write_image` for PostStore.write: hard link `source` into place, else write `data`."""

    def write_image(destination: Path) -> None:
        temporary = destination.with_name(f".{destination.name}.link.tmp")
        temporary.unlink(missing_ok=True)
        try:
            os.link(source, temporary)
        except OSError:  # another file system, or links not allowed: copy instead
            atomic_write_bytes(destination, data)
            return
        os.replace(temporary, destination)

    return write_image
