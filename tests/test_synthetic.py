"""Tests for synthetic: reproducible posts, resumable writes, decodable files, tags that
match the pixels, a long-tailed tag spread, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import synthetic
from alti2v.data.posts import RATING_TAGS, iter_posts

SAMPLE_COUNT = 120  # posts in the shared sample: enough to hold every encoding and background
SAMPLE_SEED = 0
PROJECT_ROOT = Path(__file__).resolve().parent.parent
COUNT_TAGS = {"1girl", "2girls", "3girls", "4girls"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Every post of one generated directory: its tags, rating, metadata and decoded image."""
    imgs = tmp_path_factory.mktemp("imgs")
    synthetic.generate(imgs, SAMPLE_COUNT, seed=SAMPLE_SEED)
    posts = []
    for post in iter_posts(imgs):
        with Image.open(post.image) as image:
            image.load()
        meta = json.loads(post.meta_file.read_text(encoding="utf-8"))
        posts.append({"id": post.post_id, "tags": post.tags(), "meta": meta, "image": image})
    return posts


def colour_pixel_count(image: Image.Image, colour: tuple[int, int, int], tolerance: int) -> int:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    return int((np.abs(pixels - np.asarray(colour)).max(axis=2) <= tolerance).sum())


def test_draw_post_is_deterministic() -> None:
    first_image, first_tags, first_rating = synthetic.draw_post(7, 42)
    second_image, second_tags, second_rating = synthetic.draw_post(7, 42)
    assert first_image.tobytes() == second_image.tobytes()
    assert (first_tags, first_rating) == (second_tags, second_rating)
    other_image, _, _ = synthetic.draw_post(8, 42)
    assert other_image.tobytes() != first_image.tobytes()


def test_generate_writes_identical_files_and_rerun_skips_complete_posts(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    ids = synthetic.generate(first, 4, seed=3, start_id=10)
    assert ids == ["10", "11", "12", "13"]
    synthetic.generate(second, 4, seed=3, start_id=10)
    names = sorted(path.name for path in first.iterdir())
    assert len(names) == 12
    assert names == sorted(path.name for path in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name

    # 11 stays as it is (its .txt marks it done); 12 lost its .txt, so it is drawn again.
    (first / "11.txt").write_text("kept\n", encoding="utf-8")
    (first / "12.txt").unlink()
    (first / "12.json").unlink()
    assert synthetic.generate(first, 4, seed=3, start_id=10) == ids
    assert (first / "11.txt").read_text(encoding="utf-8") == "kept\n"
    for name in names:
        if name != "11.txt":
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert not list(first.glob(".*.tmp"))


def test_every_post_is_complete_and_decodes(sample: list[dict]) -> None:
    assert [post["id"] for post in sample] == [str(post_id) for post_id in range(1, 121)]
    formats, modes = Counter(), Counter()
    for post in sample:
        image, meta = post["image"], post["meta"]
        formats[image.format] += 1
        modes[image.mode] += 1
        assert meta["rating"] in RATING_TAGS
        assert meta["tag_string_general"] == " ".join(post["tags"])
        assert meta["tag_string_character"] == ""
        assert meta["source"] == "synthetic"
        assert (meta["image_width"], meta["image_height"]) == image.size
        assert all(256 <= side <= 640 for side in image.size)
    assert {"JPEG", "PNG", "WEBP"} <= set(formats)
    assert {"RGB", "RGBA", "P", "L"} <= set(modes)
    assert formats["JPEG"] + formats["PNG"] > 0.8 * len(sample)
    assert len({post["image"].size for post in sample}) > 100


def test_tags_are_known_ordered_and_counted_once(sample: list[dict]) -> None:
    order = {tag: index for index, tag in enumerate(synthetic.ALL_TAGS)}
    for post in sample:
        tags = post["tags"]
        assert set(tags) <= set(order)
        assert [order[tag] for tag in tags] == sorted(order[tag] for tag in tags)
        assert len(COUNT_TAGS & set(tags)) == 1
        assert ("solo" in tags) == ("1girl" in tags)
        assert ("multiple_girls" in tags) == ("1girl" not in tags)


def test_tags_agree_with_pixels(sample: list[dict]) -> None:
    checked = Counter()
    for post in sample:
        tags, image = set(post["tags"]), post["image"]
        width, height = image.size
        corners = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]
        if "white_background" in tags:
            rgb = image.convert("RGB")
            assert all(min(rgb.getpixel(corner)) >= 235 for corner in corners), post["id"]
            checked["white_background"] += 1
        assert ("transparent_background" in tags) == (image.mode == "RGBA"), post["id"]
        if image.mode == "RGBA":
            assert all(image.getpixel(corner)[3] == 0 for corner in corners[:2]), post["id"]
        assert ("greyscale" in tags) == (image.mode == "L"), post["id"]
        if "night" in tags:
            assert np.asarray(image.convert("L"))[: height // 10].mean() < 90, post["id"]
            checked["night"] += 1
        if "blue_sky" in tags:
            top = np.asarray(image.convert("RGB"), dtype=float)[: height // 20].mean(axis=(0, 1))
            assert top[2] > top[0] + 40, post["id"]
            checked["blue_sky"] += 1
        for tag, (_, colour) in synthetic.HAIR_COLOURS.items():
            if tag in tags:
                assert colour_pixel_count(image, colour, 40) >= 300, (post["id"], tag)
                checked["hair"] += 1
        for tag, (_, colour) in synthetic.EYE_COLOURS.items():
            if tag in tags:
                assert colour_pixel_count(image, colour, 50) >= 50, (post["id"], tag)
                checked["eyes"] += 1
    assert min(checked.values()) >= 5, checked
    assert len(checked) == 5


def test_rating_follows_a_drawn_mark(sample: list[dict]) -> None:
    ratings = Counter()
    for post in sample:
        tags, rating = set(post["tags"]), post["meta"]["rating"]
        expected = "e" if "heart" in tags else "q" if "bikini" in tags else "g"
        if expected == "g" and "swimsuit" in tags:
            expected = "s"
        assert rating == expected, post["id"]
        ratings[rating] += 1
    assert ratings["g"] > len(sample) / 2
    assert ratings["s"] > 0


def test_tag_frequencies_are_long_tailed(sample: list[dict]) -> None:
    counts = Counter(tag for post in sample for tag in post["tags"])
    shares = sorted((count / len(sample) for count in counts.values()), reverse=True)
    assert len(counts) >= 45
    assert shares[0] > 0.5
    assert sum(share < 0.1 for share in shares) >= 10
    assert counts["1girl"] > len(sample) / 2


def test_cli_prints_summary_as_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    arguments = ["--out", str(tmp_path), "--count", "3", "--seed", "1", "--start-id", "5"]
    assert synthetic.main([*arguments, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    del summary["seconds"]
    assert summary == {
        "out": str(tmp_path),
        "posts": 3,
        "written": 3,
        "already_there": 0,
        "first_id": 5,
        "last_id": 7,
        "seed": 1,
    }
    assert sorted(path.stem for path in tmp_path.glob("*.txt")) == ["5", "6", "7"]
    assert synthetic.main([*arguments, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["already_there"] == 3


def test_module_runs_from_the_command_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "synthetic", "--out", str(tmp_path), "--count", "2"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    expected = f"synthetic: 2 posts (ids 1..2) in {tmp_path}: 2 written, 0 already there, seed 0, "
    assert lines[0].startswith(expected)
    assert len(list(tmp_path.glob("*.txt"))) == 2
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_cli_refuses_a_negative_count(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as raised:
        synthetic.main(["--out", str(tmp_path), "--count", "-1"])
    assert raised.value.code == 2
    assert not list(tmp_path.iterdir())
