"""`--mode import`: a local folder of images with same-named tag files, brought into the layout."""

from __future__ import annotations

import json
import os

from danbooru_server import make_image, posts_on_disk, run_cli

from alti2v.data.posts import iter_posts


def make_source(folder):
    """A training-set folder with every case the importer must handle."""
    (folder / "sub").mkdir(parents=True)
    files = {
        "a.png": make_image(1, "PNG"),
        "a.txt": b"long hair, 1girl, rating:general\n",
        "sub/b.jpg": make_image(2, "JPEG"),
        "sub/b.txt": b"1girl solo smile",
        "c.jpg": make_image(3, "JPEG"),  # no tag file
        "d.txt": b"lonely tags",  # no image
        "e.mp4": b"\x00\x00\x00\x18ftypmp42",
        "e.txt": b"video",
        "f.jpg": b"\xff\xd8\xff\xe0 not really a jpeg",
        "f.txt": b"broken",
        "g.png": make_image(1, "PNG"),  # the same bytes as a.png
        "g.txt": b"copy",
        "h; rm -rf ~.JPG": make_image(4, "JPEG"),  # a hostile name; the extension in capitals
        "h; rm -rf ~.txt": b"rating:explicit, tag with spaces",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def test_import_assigns_ids_after_the_largest_and_skips_what_it_must(tmp_path):
    source = tmp_path / "source"
    files = make_source(source)
    data_dir = tmp_path / "data"
    (data_dir / "imgs").mkdir(parents=True)
    (data_dir / "imgs" / "41.jpg").write_bytes(make_image(41, "JPEG"))
    (data_dir / "imgs" / "41.txt").write_text("existing\n")

    result = run_cli(["--mode", "import", "--src", str(source), "--data-dir", str(data_dir)])

    # 1: finished, but an input failed (the trap site's corrupt post, reported)
    assert result.returncode == 1, result.stderr
    size = sum(len(files[name]) for name in ("a.png", "h; rm -rf ~.JPG", "sub/b.jpg"))
    assert result.stdout == (
        f"import: downloaded 3 posts ({size} bytes), skipped 5 "
        "(corrupt 1, duplicate_md5 1, no_image 1, no_tags 1, not_image 1)\n"
    )
    assert posts_on_disk(data_dir) == {
        41: {".jpg", ".txt"},
        42: {".png", ".json", ".txt"},
        43: {".jpg", ".json", ".txt"},
        44: {".jpg", ".json", ".txt"},
    }
    imgs = data_dir / "imgs"
    assert (imgs / "42.txt").read_text() == "long_hair 1girl\n"
    assert (imgs / "43.txt").read_text() == "tag_with_spaces\n"
    assert (imgs / "44.txt").read_text() == "1girl solo smile\n"
    meta = json.loads((imgs / "43.json").read_text())
    assert meta["rating"] == "e" and meta["imported_from"] == "h; rm -rf ~.JPG"
    assert json.loads((imgs / "42.json").read_text())["rating"] == "g"
    assert (imgs / "43.jpg").read_bytes() == files["h; rm -rf ~.JPG"]
    # Hard links where the file system allows: the same file, not a copy.
    assert os.stat(imgs / "44.jpg").st_ino == os.stat(source / "sub" / "b.jpg").st_ino
    assert [post.labels() for post in iter_posts(imgs)][1] == [
        "long_hair",
        "1girl",
        "rating:general",
    ]


def test_a_second_import_adds_nothing(tmp_path):
    source = tmp_path / "source"
    make_source(source)
    arguments = ["--mode", "import", "--src", str(source), "--data-dir", str(tmp_path / "data")]
    run_cli(arguments)
    before = sorted(path.name for path in (tmp_path / "data" / "imgs").iterdir())

    again = run_cli([*arguments, "--json"])

    assert json.loads(again.stdout)["downloaded"] == 0
    assert json.loads(again.stdout)["skipped"]["duplicate_md5"] == 4
    assert sorted(path.name for path in (tmp_path / "data" / "imgs").iterdir()) == before


def test_import_of_a_missing_folder_is_one_clear_error(tmp_path):
    missing = tmp_path / "nowhere"
    result = run_cli(["--mode", "import", "--src", str(missing), "--data-dir", str(tmp_path)])

    assert result.returncode == 3
    assert result.stderr.strip() == (
        f"error: --src {missing} is not a folder; give the folder to import."
    )


def test_network_flags_are_refused_in_import_mode(tmp_path):
    result = run_cli(["--mode", "import", "--src", str(tmp_path), "--variant", "original"])

    assert result.returncode == 2
    assert "--variant does not apply to --mode import" in result.stderr


def test_a_tag_file_that_is_not_utf8_is_skipped_as_maeshori_refuses_it(tmp_path):
    # Decoding it anyway would put U+FFFD into tag names; --maeshori refuses the same file.
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.png").write_bytes(make_image(1, "PNG"))
    (source / "a.txt").write_bytes(b"caf\xe9 1girl")  # Latin-1
    (source / "b.png").write_bytes(make_image(2, "PNG"))
    (source / "b.txt").write_bytes(b"solo")
    data_dir = tmp_path / "data"

    result = run_cli(
        ["--mode", "import", "--src", str(source), "--data-dir", str(data_dir), "--json"]
    )

    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr  # a failed input, as at --maeshori
    summary = json.loads(result.stdout)
    assert (summary["downloaded"], summary["skipped"]) == (1, {"tags not UTF-8": 1})
    warnings = [line for line in result.stderr.splitlines() if "a.txt" in line]
    assert len(warnings) == 1, result.stderr
    assert (
        f"{source / 'a.txt'}: not UTF-8 (byte 3); post skipped, save the file as UTF-8"
        in (warnings[0])
    )
    assert [post.labels() for post in iter_posts(data_dir / "imgs")] == [["solo"]]
    assert not any("\ufffd" in path.read_text() for path in (data_dir / "imgs").glob("*.txt"))


def test_a_json_beside_the_image_keeps_its_rating_and_categories(tmp_path):
    source, data_dir = tmp_path / "source", tmp_path / "data"
    source.mkdir()
    for stem, tags, meta in (
        ("1", "1girl hatsune_miku", {"rating": "q", "tag_string_character": "hatsune_miku",
                                     "tag_string_general": "1girl", "md5": "ignored"}),
        ("2", "solo rating:explicit", {"rating": "g"}),  # the .txt's rating tag wins
        ("3", "smile", None),  # a .json that is not JSON: imported without it
    ):  # fmt: skip
        (source / f"{stem}.png").write_bytes(make_image(int(stem), "PNG"))
        (source / f"{stem}.txt").write_text(tags)
        if meta is not None:
            (source / f"{stem}.json").write_text(json.dumps(meta))
        else:
            (source / f"{stem}.json").write_text("{not json")
    result = run_cli(["--mode", "import", "--src", str(source), "--data-dir", str(data_dir)])
    assert result.returncode == 0, result.stderr
    assert f"{source / '3.json'}: unreadable (" in result.stderr
    saved = {post.post_id: post for post in iter_posts(data_dir / "imgs")}
    first, second, third = (json.loads(saved[key].meta_file.read_text()) for key in "123")
    assert first["rating"] == "q" and first["tag_string_character"] == "hatsune_miku"
    assert "md5" in first and first["md5"] != "ignored"  # only rating and categories come along
    assert saved["1"].tag_categories()["hatsune_miku"] == "character"
    assert saved["1"].rating_tag() == "rating:questionable"
    assert second["rating"] == "e"
    assert third["rating"] is None
