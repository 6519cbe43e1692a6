"""Atomic publication: readers see the old file or folder or the new one, never a part of it.

Files and folders are written under a temporary name, fsynced (the file or every file of the
folder, then the parent folder), and renamed into place. Every stage imports the
`atomic_write_*` functions and `publish_folder` from here, and reads its JSON files with
`read_json`, which fails in one line that names the file and says what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alti2v.errors import one_line

# A folder with this prefix is unfinished; readers skip it and the next writer clears it away.
TEMPORARY_PREFIX = ".tmp-"


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _current_umask()


def fsync_folder(folder: Path) -> None:
    """Make the names in `folder` (a rename, a new file) survive a power cut."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        # mkstemp makes files private (0600); give them the mode a plain open() would.
        os.fchmod(descriptor, 0o666 & ~_UMASK)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: object) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


# read_json's `missing` when a missing file is an error like any unreadable one.
REQUIRED: Any = object()


def read_json(
    path: Path, error: Callable[[str], Exception], fix: str, missing: Any = REQUIRED
) -> dict:
    """The JSON object in `path`. A file that cannot be read, is not UTF-8 JSON or holds no
    object raises `error("PATH: unreadable (cause); FIX")`; a missing file returns `missing`
    when one is given."""
    try:
        return json_object(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as cause:  # ValueError: bad JSON or not UTF-8
        if isinstance(cause, FileNotFoundError) and missing is not REQUIRED:
            return missing
        raise error(f"{path}: unreadable ({one_line(cause)}); {fix}") from None


def json_object(text: str | bytes) -> dict:
    """The JSON object in `text`; ValueError for bad JSON or another value than an object."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


@contextmanager
def publish_folder(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `final`; when the block ends without an error,
    fsync what it holds and rename it to `final` (replacing an older `final`)."""
    temporary = final.parent / f"{TEMPORARY_PREFIX}{final.name}"
    shutil.rmtree(temporary, ignore_errors=True)  # left by a killed run
    temporary.mkdir(parents=True)
    try:
        yield temporary
        for path in temporary.rglob("*"):
            if path.is_file():
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
        fsync_folder(temporary)
        if final.exists():
            shutil.rmtree(final)
        temporary.rename(final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    fsync_folder(final.parent)
