"""The files that are posts: `imgs/<post_id>.txt` (its tags on one line) beside an image of the
same stem and, optionally, `imgs/<post_id>.json` (metadata, at least `rating`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alti2v.data.files import read_json
from alti2v.data.layout import PostFiles
from alti2v.data.skips import BAD_JSON, TAGS_NOT_UTF8, InputError

# Extensions we accept as images, in the order we look for them next to a .txt.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")

# Danbooru rating letters (the meaning since 2022-05) and the vocabulary tag each becomes.
RATING_TAGS = {
    "g": "rating:general",
    "s": "rating:sensitive",
    "q": "rating:questionable",
    "e": "rating:explicit",
}

# The tag categories of a Danbooru post's .json, as `tag_string_<category>`.
DANBOORU_CATEGORIES = ("general", "character", "copyright", "artist", "meta")


@dataclass(frozen=True)
class Post:
    """One tagged image on disk."""

    post_id: str
    image: Path | None
    tags_file: Path
    meta_file: Path

    def tags(self) -> list[str]:
        """The tags of the .txt; InputError for a file that is not UTF-8 (read_tags_file)."""
        return parse_tags(read_tags_file(self.tags_file))

    def rating_tag(self) -> str | None:
        """`rating:<name>` from the .json; None without a .json or a known rating. A .json
        that is not a JSON object raises InputError."""
        return RATING_TAGS.get(self._meta().get("rating"))

    def _meta(self) -> dict:
        return read_json(self.meta_file, self._bad_json, "post kept without a rating tag", {})

    def _bad_json(self, message: str) -> InputError:
        return InputError(self.meta_file, BAD_JSON, message.removeprefix(f"{self.meta_file}: "))

    def tag_categories(self) -> dict[str, str]:
        """{tag: Danbooru category} from the .json's `tag_string_<category>` fields; empty
        when there is no readable metadata (checked_labels reports an unreadable .json)."""
        try:
            meta = self._meta()
        except InputError:
            return {}
        return {
            tag: category
            for category in DANBOORU_CATEGORIES
            for tag in parse_tags(str(meta.get(f"tag_string_{category}") or ""))
        }

    def checked_labels(self) -> tuple[list[str] | None, list[InputError]]:
        """The post's tags plus its rating tag, each once, in file order, and what could not be
        read. Labels are None when the tags are unreadable (the post is skipped)."""
        try:
            labels = dict.fromkeys(self.tags())
        except InputError as error:
            return None, [error]
        problems = []
        try:
            rating = self.rating_tag()
        except InputError as error:
            rating, problems = None, [error]
        if rating:
            labels[rating] = None
        return list(labels), problems

    def labels(self) -> list[str]:
        """checked_labels() without the problems: [] when the tags are unreadable."""
        return self.checked_labels()[0] or []


def read_tags_file(path: Path) -> str:
    """The text of a tag file. One that is not UTF-8 raises InputError (TAGS_NOT_UTF8): decoding
    it anyway would put U+FFFD into tags, and guessing its encoding could name the wrong tag."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        detail = f"not UTF-8 (byte {error.start}); post skipped, save the file as UTF-8"
        raise InputError(path, TAGS_NOT_UTF8, detail) from None


def parse_tags(text: str) -> list[str]:
    """Tags from a tag file: Danbooru's space-separated form or the comma-separated form of
    training sets ("long hair, 1girl"), where spaces inside a tag become underscores."""
    if "," in text:
        parts = (part.strip().replace(" ", "_") for part in text.split(","))
    else:
        parts = text.split()
    return list(dict.fromkeys(part for part in parts if part))


def find_image(imgs: Path, stem: str) -> Path | None:
    files = PostFiles(imgs, stem)
    for extension in IMAGE_EXTENSIONS:
        for candidate in (files.image(extension), files.image(extension.upper())):
            if candidate.is_file():
                return candidate
    return None


def iter_posts(imgs: Path) -> Iterator[Post]:
    """Every `<stem>.txt` in `imgs`, sorted by stem (numerically where stems are numbers)."""
    if not imgs.is_dir():
        return
    # The sort holds every stem (tens of bytes a post; --build streams the rest), but not a
    # directory entry and a Path for each of the folder's files, as Path.glob would.
    with os.scandir(imgs) as entries:
        names = (os.path.splitext(entry.name) for entry in entries)
        stems = sorted((stem for stem, extension in names if extension == ".txt"), key=_stem_order)
    for stem in stems:
        files = PostFiles(imgs, stem)
        yield Post(stem, find_image(imgs, stem), files.tags, files.meta)


def _stem_order(stem: str) -> tuple[int, int, str]:
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)
