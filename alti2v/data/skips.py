"""Inputs left out of a run: the error an unreadable input raises, and every skip reason's kind.

Each stage counts skipped posts by reason and reports the counts at the end; a reason marked as a
failed input here was warned about by name and makes the run exit with EXIT_SOME_INPUTS_FAILED,
the others are the user's choices or the nature of the post. The dataset stages (--maeshori,
--build, --eval) spell reasons with spaces; the scraper's keep their underscores, because
scrape-state.json stores them.

    failed = failed_inputs(summary["skipped"])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class InputError(Exception):
    """An input file (image, .txt, .json) that cannot be read; `reason` is its SKIP_REASONS key."""

    def __init__(self, path: Path, reason: str, detail: str):
        # The arguments go to Exception too: --build's workers send these back pickled.
        super().__init__(path, reason, detail)
        self.path, self.reason, self.detail = path, reason, detail

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


# The dataset stages.
NO_IMAGE = "no image"  # a .txt without an image beside it, or the image gone before decoding
UNREADABLE = "unreadable"  # a file that cannot be read or decoded (the scraper's too)
OVERSIZED = "oversized"  # more pixels than --max-pixels
TAGS_NOT_UTF8 = "tags not UTF-8"  # the .txt (--mode import's too): decoding it would garble tags
FILTERED_OUT = "filtered out"  # without the vocabulary's --filter tag
NO_VOCABULARY_TAG = "no vocabulary tag"  # nothing to learn or score
# Not a skip: the post is kept without its rating tag; counted apart as "bad_json".
BAD_JSON = "bad .json"

# The scraper (danbooru_datasetgenerator.py).
CORRUPT = "corrupt"
DOWNLOAD_FAILED = "download_failed"
UNREADABLE_PAGE = "unreadable_page"
MISSING = "missing"  # no post with that id on the site
NO_FILE = "no_file"
DELETED = "deleted"
NOT_IMAGE = "not_image"
UNSUPPORTED_TYPE = "unsupported_type"
BAD_ID = "bad_id"
ON_DISK = "on_disk"
REFUSED_URL = "refused_url"
REPEATED = "repeated"
DUPLICATE_MD5 = "duplicate_md5"
IMPORT_NO_IMAGE = "no_image"  # --mode import: a group of files without an image
NO_TAGS = "no_tags"

# Skip reason -> whether it counts as a failed input.
SKIP_REASONS: dict[str, bool] = {
    NO_IMAGE: True,
    UNREADABLE: True,
    OVERSIZED: True,
    TAGS_NOT_UTF8: True,
    FILTERED_OUT: False,
    NO_VOCABULARY_TAG: False,
    CORRUPT: True,
    DOWNLOAD_FAILED: True,
    UNREADABLE_PAGE: True,
    MISSING: False,
    NO_FILE: False,
    DELETED: False,
    NOT_IMAGE: False,
    UNSUPPORTED_TYPE: False,
    BAD_ID: False,
    ON_DISK: False,
    REFUSED_URL: False,
    REPEATED: False,
    DUPLICATE_MD5: False,
    IMPORT_NO_IMAGE: False,
    NO_TAGS: False,
}
FAILED_INPUTS = frozenset(reason for reason, failed in SKIP_REASONS.items() if failed)


def failed_inputs(skipped: Mapping[str, int]) -> int:
    """How many of the skipped posts (reason -> count) were failed inputs."""
    return sum(count for reason, count in skipped.items() if reason in FAILED_INPUTS)
