"""Caption files: each mode on an existing caption, de-duplication across spellings, the record
that lets a changed image be re-captioned from the user's own tags, mirrored output folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from alti2v.tag.captions import (
    CaptionSettings,
    caption_key,
    caption_path,
    caption_record_fields,
    is_tag_list,
    sidecar_path,
    split_caption,
    write_caption,
)
from alti2v.tag.inputs import InputImage

NEW = ["long_hair", "smile", "(solo:0.91)"]


@pytest.mark.parametrize(
    ("mode", "status", "expected"),
    [
        ("skip", "kept", "Long Hair, my_oc\n"),
        ("overwrite", "updated", "long_hair, smile, (solo:0.91)\n"),
        ("append", "updated", "Long Hair, my_oc, smile, (solo:0.91)\n"),
        ("prepend", "updated", "smile, (solo:0.91), Long Hair, my_oc\n"),
    ],
)
def test_each_mode_on_an_existing_caption(tmp_path, mode, status, expected):
    path = tmp_path / "1.txt"
    path.write_text("Long Hair, my_oc\n")
    settings = CaptionSettings(mode=mode)
    assert write_caption(path, NEW, settings, record=None) == (status, "Long Hair, my_oc\n")
    assert path.read_text() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.txt"]  # no temporary file left


def test_every_mode_writes_a_missing_caption(tmp_path):
    for mode in ("skip", "overwrite", "append", "prepend"):
        path = tmp_path / f"{mode}.txt"
        assert write_caption(path, NEW, CaptionSettings(mode=mode), None) == ("written", None)
        assert path.read_text() == "long_hair, smile, (solo:0.91)\n"


def test_a_caption_we_wrote_is_redone_from_the_users_tags(tmp_path):
    path = tmp_path / "1.txt"
    path.write_text("my_oc\n")
    settings = CaptionSettings(mode="append")
    _, base = write_caption(path, ["smile"], settings, None)
    assert path.read_text() == "my_oc, smile\n"
    record = caption_record_fields(path, base)
    assert write_caption(path, ["frown"], settings, record) == ("updated", "my_oc\n")
    assert path.read_text() == "my_oc, frown\n"  # the stale "smile" we added is gone
    path.write_text("my_oc, smile, hand_edit\n")  # edited by hand since: all of it is theirs
    write_caption(path, ["frown"], settings, record)
    assert path.read_text() == "my_oc, smile, hand_edit, frown\n"


@pytest.mark.parametrize(
    ("existing", "mode", "expected"),
    [
        # A sentence stays as written, and every new tag comes after (or before) it.
        ("A girl with long hair, smiling.\n", "append",
         "A girl with long hair, smiling., long_hair, smile, (solo:0.91)\n"),
        ("keep me", "append", "keep me, long_hair, smile, (solo:0.91)\n"),
        # A comma list keeps its bytes and loses only the tags it has already, in any spelling.
        ("Long Hair,  my_oc", "append", "Long Hair,  my_oc, smile, (solo:0.91)\n"),
        ("solo, long hair\n", "append", "solo, long hair, smile\n"),
        ("long_hair, solo, smile\n", "append", "long_hair, solo, smile\n"),
        # A Danbooru line is text too: its spaces are not cut into tags.
        ("1girl long_hair\n", "append", "1girl long_hair, long_hair, smile, (solo:0.91)\n"),
        ("1girl long_hair\n", "prepend", "long_hair, smile, (solo:0.91), 1girl long_hair\n"),
    ],
)  # fmt: skip
def test_append_and_prepend_leave_the_existing_caption_byte_for_byte(
    tmp_path, existing, mode, expected
):
    caption = tmp_path / "a.txt"
    caption.write_text(existing, encoding="utf-8")
    write_caption(caption, NEW, CaptionSettings(mode=mode), None)
    assert caption.read_text(encoding="utf-8") == expected


def test_a_tag_list_is_short_comma_separated_parts():
    assert is_tag_list("1girl, long hair, hair ribbon", ", ")
    assert not is_tag_list("A girl, smiling, in a park.", ", ")
    assert not is_tag_list("1girl long_hair", ", ")
    assert not is_tag_list("she stands under the old tree, holding a red umbrella", ", ")


def test_spellings_and_separators():
    assert caption_key("(Long Hair:0.87)") == caption_key("long_hair") == "long_hair"
    assert caption_key("\\(cosplay\\)") == caption_key("(cosplay)")
    assert split_caption("1girl long_hair solo\n", ", ") == ["1girl", "long_hair", "solo"]
    assert split_caption("a | b c", " | ") == ["a", "b c"]


def test_paths_beside_the_image_or_mirrored(tmp_path):
    image = InputImage(tmp_path / "in" / "sub" / "x.y.png", tmp_path / "in")
    assert caption_path(image, CaptionSettings()) == tmp_path / "in" / "sub" / "x.y.txt"
    mirrored = CaptionSettings(ext=".caption", output_dir=tmp_path / "out")
    assert caption_path(image, mirrored) == tmp_path / "out" / "sub" / "x.y.caption"
    assert sidecar_path(image, None) == tmp_path / "in" / "sub" / "x.y.png.json"
    assert sidecar_path(image, Path("o")) == Path("o") / "sub" / "x.y.png.json"
