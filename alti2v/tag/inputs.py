"""What `--pred FILE...` means: files, folders (`--recursive` for their subfolders) and globs.

    found = find_inputs(["shots/", "extra/*.png", "one.jpg"], recursive=True)
    found.images    # InputImage(path, root) in a stable order, each file once
    found.problems  # one line per argument or folder that could not be read

A file named on the command line is always an input, whatever its name (decoding will say if it
is not an image); in folders only files with an image extension are, so the .txt and .json of a
dataset are passed over quietly. Symlinks are followed, a folder reached twice (a symlink loop)
is walked once, and an unreadable folder or a file that vanishes is a problem, not a stop.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from alti2v.data.posts import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class InputImage:
    path: Path  # as the user would write it (their argument, joined with names below it)
    root: Path  # the folder given on the command line (or the file's own folder)

    def relative(self) -> Path:
        """The path below `root`, for mirroring the tree under an output folder."""
        return self.path.relative_to(self.root)


@dataclass
class FoundInputs:
    images: list[InputImage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def find_inputs(arguments: list[str], recursive: bool = False) -> FoundInputs:
    found = FoundInputs()
    seen_files: set[Path] = set()

    def add(path: Path, root: Path) -> None:
        if path not in seen_files:
            seen_files.add(path)
            found.images.append(InputImage(path, root))

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            images = _walk(path, recursive, found.problems)
            if not images:
                found.problems.append(_no_images(path, recursive))
            for image in images:
                add(image, path)
        elif path.exists() or path.is_symlink() or not glob.has_magic(argument):
            add(path, path.parent)  # a missing file is reported when it fails to decode
        else:
            matches = sorted(glob.glob(argument, recursive=True))
            if not matches:
                found.problems.append(f"{argument}: no file matches this pattern")
            # `**` follows symlinks, round a loop too: keep the first path to each real file.
            real_files: set[str] = set()
            for match in map(Path, matches):
                if match.is_dir():
                    for image in _walk(match, recursive, found.problems):
                        add(image, match)
                elif match.is_file() and _is_image_name(match):
                    real = os.path.realpath(match)
                    if real not in real_files:
                        real_files.add(real)
                        add(match, match.parent)
    return found


def _walk(folder: Path, recursive: bool, problems: list[str]) -> list[Path]:
    """Image files under `folder`, sorted by name at each level, subfolders after files."""
    images: list[Path] = []
    visited: set[tuple[int, int]] = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            status = current.stat()
            if (status.st_dev, status.st_ino) in visited:
                continue  # a symlink back to a folder already walked
            visited.add((status.st_dev, status.st_ino))
            with os.scandir(current) as entries:
                children = sorted(entries, key=lambda entry: entry.name)
        except OSError as error:
            problems.append(f"{current}: cannot read this folder ({error.strerror}); skipped")
            continue
        subfolders = []
        for entry in children:
            try:
                if entry.is_dir():
                    subfolders.append(Path(entry.path))
                elif entry.is_file() and _is_image_name(Path(entry.name)):
                    images.append(Path(entry.path))
            except OSError:
                continue  # vanished, or a symlink loop on itself: not an image either way
        if recursive:
            pending.extend(reversed(subfolders))
    return images


def _no_images(folder: Path, recursive: bool) -> str:
    """The line for a folder given with no images in it: add --recursive when they are deeper."""
    if not recursive and _walk(folder, True, []):
        return f"{folder}: no images in this folder, but its subfolders hold some; add --recursive"
    return f"{folder}: no images in this folder or its subfolders"


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS
