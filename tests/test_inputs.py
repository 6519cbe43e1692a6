"""What --pred FILE... finds: files, folders, --recursive, globs, symlinks and their loops,
unreadable folders."""

from __future__ import annotations

import os
from pathlib import Path

from alti2v.tag import inputs
from alti2v.tag.inputs import find_inputs


def make_tree(root: Path) -> None:
    for name in ("b.PNG", "a.jpg", "notes.txt", "meta.json", "broken.jpg", "sub/c.webp",
                 "sub/deeper/d.png", "sub/deeper/readme.md", "other/e.gif"):  # fmt: skip
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (root / "folder.jpg").mkdir()  # a folder named like an image is a folder
    (root / "sub" / "link.jpg").symlink_to(root / "other" / "e.gif")
    (root / "sub" / "loop").symlink_to(root)  # a symlink loop back to the top
    (root / "sub" / "dangling.png").symlink_to(root / "gone.png")


def relative(found, root: Path) -> list[str]:
    return [str(image.path.relative_to(root)) for image in found.images]


def test_a_folder_gives_its_images_sorted(tmp_path):
    make_tree(tmp_path)
    found = find_inputs([str(tmp_path)])
    assert relative(found, tmp_path) == ["a.jpg", "b.PNG", "broken.jpg"]
    assert found.problems == []
    assert all(image.root == tmp_path for image in found.images)


def test_recursive_follows_symlinks_once_and_survives_a_loop(tmp_path):
    make_tree(tmp_path)
    found = find_inputs([str(tmp_path)], recursive=True)
    assert relative(found, tmp_path) == [
        "a.jpg", "b.PNG", "broken.jpg",
        "other/e.gif",
        "sub/c.webp", "sub/link.jpg",
        "sub/deeper/d.png",
    ]  # fmt: skip
    assert found.problems == []
    assert found.images[-1].relative() == Path("sub/deeper/d.png")


def test_files_and_globs_as_given_missing_files_kept_for_their_error(tmp_path):
    make_tree(tmp_path)
    found = find_inputs([
        str(tmp_path / "notes.txt"),  # named on purpose: decoding will say it is no image
        str(tmp_path / "sub" / "*.webp"),
        str(tmp_path / "**" / "*.png"),
        str(tmp_path / "missing.jpg"),
        str(tmp_path / "nothing*.jpg"),
        str(tmp_path / "a.jpg"), str(tmp_path / "a.jpg"),  # each file once
    ])  # fmt: skip
    assert relative(found, tmp_path) == [
        "notes.txt", "sub/c.webp", "sub/deeper/d.png", "missing.jpg", "a.jpg",
    ]  # fmt: skip
    assert found.problems == [f"{tmp_path / 'nothing*.jpg'}: no file matches this pattern"]
    deeper = found.images[2]
    assert deeper.root == tmp_path / "sub" / "deeper"


def test_an_unreadable_folder_is_a_problem_not_a_stop(tmp_path, monkeypatch):
    make_tree(tmp_path)
    blocked = tmp_path / "sub"
    real_scandir = os.scandir

    def scandir(path):
        # Root reads any folder whatever its mode, so the test makes one unreadable here.
        if Path(path) == blocked:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(inputs.os, "scandir", scandir)
    found = find_inputs([str(tmp_path)], recursive=True)
    assert relative(found, tmp_path) == ["a.jpg", "b.PNG", "broken.jpg", "other/e.gif"]
    assert found.problems == [f"{blocked}: cannot read this folder (Permission denied); skipped"]


def test_a_folder_without_images_is_a_problem_that_says_what_to_add(tmp_path):
    (tmp_path / "top" / "nested").mkdir(parents=True)
    (tmp_path / "top" / "README.md").write_text("not an image")
    (tmp_path / "top" / "nested" / "a.png").write_bytes(b"")
    (tmp_path / "bare").mkdir()
    found = find_inputs([str(tmp_path / "top"), str(tmp_path / "bare")])
    assert found.images == []
    assert found.problems == [
        f"{tmp_path / 'top'}: no images in this folder, but its subfolders hold some; "
        "add --recursive",
        f"{tmp_path / 'bare'}: no images in this folder or its subfolders",
    ]
    assert find_inputs([str(tmp_path / "top")], recursive=True).problems == []
