"""Tests for --maeshori (alti2v.data.vocabulary): tag counts over the posts' tag files plus their
rating tags, the ranking and its cuts, the post filter, both tag-file formats, the exact files
written, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from alti2v.data.layout import DataDir
from alti2v.data.posts import parse_tags
from alti2v.data.vocabulary import (
    VocabularyError,
    build_vocabulary,
    load_vocabulary,
    vocabulary_hash,
)

# post id -> (tag file text, rating letter or None for a post without .json)
POSTS = {
    "1": ("1girl solo long_hair smile", "g"),
    "2": ("1girl solo short_hair smile", "g"),
    "3": ("2girls multiple_girls long_hair", "s"),
    "4": ("1girl solo long_hair hat", "q"),
    "5": ("long hair, 1girl, solo, cat ears", None),
    "6": ("2girls multiple_girls smile hat", "g"),
}
# Counts over POSTS, ranked (most frequent first, ties by name):
RANKED = [
    ("1girl", 4),
    ("long_hair", 4),
    ("solo", 4),
    ("rating:general", 3),
    ("smile", 3),
    ("2girls", 2),
    ("hat", 2),
    ("multiple_girls", 2),
    ("cat_ears", 1),
    ("rating:questionable", 1),
    ("rating:sensitive", 1),
    ("short_hair", 1),
]


def write_posts(root: Path, posts: dict[str, tuple[str, str | None]]) -> DataDir:
    data = DataDir(root)
    data.imgs.mkdir(parents=True)
    for post_id, (tag_text, rating) in posts.items():
        Image.new("RGB", (8, 8)).save(data.imgs / f"{post_id}.png")
        (data.imgs / f"{post_id}.txt").write_text(tag_text + "\n", encoding="utf-8")
        if rating is not None:
            meta = {"id": int(post_id), "rating": rating}
            (data.imgs / f"{post_id}.json").write_text(json.dumps(meta), encoding="utf-8")
    return data


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    return write_posts(tmp_path, POSTS)


def test_vocab_txt_is_every_tag_ranked_by_count_then_name(data: DataDir) -> None:
    build_vocabulary(data)
    expected = "".join(f"{tag}\n" for tag, _ in RANKED)
    assert data.vocab.read_text(encoding="utf-8") == expected
    assert load_vocabulary(data.vocab) == [tag for tag, _ in RANKED]


def test_vocab_json_records_how_it_was_made(data: DataDir) -> None:
    returned = build_vocabulary(data, vocab_size=5, min_count=1)
    meta = json.loads(data.vocab_meta.read_text(encoding="utf-8"))
    assert meta == returned
    kept = RANKED[:5]
    assert meta == {
        "num_posts": 6,
        "num_posts_used": 6,
        "num_distinct_tags": len(RANKED),
        "num_tags": 5,
        "vocab_size": 5,
        "min_count": 1,
        "filter": None,
        "problems": {},
        "hash": vocabulary_hash([tag for tag, _ in kept]),
        "counts": dict(kept),
        # These posts' .json files carry no tag_string_<category> fields.
        "categories": {
            tag: "rating" if tag.startswith("rating:") else "unknown" for tag, _ in kept
        },
    }


def test_categories_come_from_the_json_tag_strings(tmp_path: Path) -> None:
    data = write_posts(tmp_path, {"1": ("1girl hatsune_miku vocaloid kei highres", "g")})
    (data.imgs / "2.png").write_bytes((data.imgs / "1.png").read_bytes())
    (data.imgs / "2.txt").write_text("1girl smile\n")  # no .json: smile stays unknown
    meta = {
        "rating": "g",
        "tag_string_general": "1girl",
        "tag_string_character": "hatsune_miku",
        "tag_string_copyright": "vocaloid",
        "tag_string_artist": "kei",
        "tag_string_meta": "highres",
    }
    (data.imgs / "1.json").write_text(json.dumps(meta))
    categories = build_vocabulary(data)["categories"]
    assert categories == {
        "1girl": "general",
        "hatsune_miku": "character",
        "vocaloid": "copyright",
        "kei": "artist",
        "highres": "meta",
        "rating:general": "rating",
        "smile": "unknown",
    }


def test_rating_tags_come_from_the_json(data: DataDir) -> None:
    counts = build_vocabulary(data)["counts"]
    assert {tag: count for tag, count in counts.items() if tag.startswith("rating:")} == {
        "rating:general": 3,
        "rating:sensitive": 1,
        "rating:questionable": 1,
    }


def test_post_without_json_gets_no_rating_tag(tmp_path: Path) -> None:
    data = write_posts(tmp_path, {"1": ("1girl solo", None), "2": ("1girl", "e")})
    meta = build_vocabulary(data)
    assert meta["counts"] == {"1girl": 2, "rating:explicit": 1, "solo": 1}


def test_unknown_rating_is_ignored(tmp_path: Path) -> None:
    data = write_posts(tmp_path, {"1": ("1girl", "x"), "2": ("1girl", "g")})
    assert build_vocabulary(data)["counts"] == {"1girl": 2, "rating:general": 1}


def test_a_corrupt_json_is_named_counted_and_the_post_keeps_its_tags(tmp_path, caplog) -> None:
    data = write_posts(tmp_path, {"1": ("1girl", "g"), "2": ("1girl solo", "g")})
    (data.imgs / "2.json").write_text('{"rating": "g"')  # cut short
    meta = build_vocabulary(data)
    assert meta["counts"] == {"1girl": 2, "rating:general": 1, "solo": 1}
    assert meta["problems"] == {"bad .json": 1}
    assert [record.getMessage().split(":")[0] for record in caplog.records] == [
        str(data.imgs / "2.json")
    ]


def test_a_tag_file_that_is_not_utf8_is_named_counted_and_skipped(tmp_path, caplog) -> None:
    data = write_posts(tmp_path, {"1": ("1girl", "g"), "2": ("1girl", "g")})
    (data.imgs / "2.txt").write_bytes("1girl caf\u00e9_au_lait".encode("latin-1"))
    meta = build_vocabulary(data)
    # Never U+FFFD (what a lenient decode makes of the byte) in a tag: the post is skipped.
    assert meta["counts"] == {"1girl": 1, "rating:general": 1}
    assert (meta["problems"], meta["num_posts_used"]) == ({"tags not UTF-8": 1}, 1)
    assert "\ufffd" not in data.vocab.read_text(encoding="utf-8")
    (warning,) = [record.getMessage() for record in caplog.records]
    assert warning.startswith(f"{data.imgs / '2.txt'}: not UTF-8")


def test_vocab_size_keeps_the_most_frequent(data: DataDir) -> None:
    meta = build_vocabulary(data, vocab_size=3)
    assert data.vocab.read_text() == "1girl\nlong_hair\nsolo\n"
    assert (meta["num_tags"], meta["num_distinct_tags"]) == (3, len(RANKED))


def test_min_count_drops_rare_tags(data: DataDir) -> None:
    build_vocabulary(data, min_count=3)
    assert load_vocabulary(data.vocab) == ["1girl", "long_hair", "solo", "rating:general", "smile"]


def test_min_count_applies_before_vocab_size(data: DataDir) -> None:
    build_vocabulary(data, vocab_size=100, min_count=2)
    assert load_vocabulary(data.vocab) == [tag for tag, count in RANKED if count >= 2]


def test_filter_keeps_only_posts_with_the_tag(data: DataDir) -> None:
    meta = build_vocabulary(data, filter_tag="hat")
    # Posts 4 and 6 carry `hat`.
    assert (meta["num_posts"], meta["num_posts_used"], meta["filter"]) == (6, 2, "hat")
    assert meta["counts"] == {
        "hat": 2,
        "1girl": 1,
        "2girls": 1,
        "long_hair": 1,
        "multiple_girls": 1,
        "rating:general": 1,
        "rating:questionable": 1,
        "smile": 1,
        "solo": 1,
    }


def test_filter_can_be_a_rating_tag(data: DataDir) -> None:
    meta = build_vocabulary(data, filter_tag="rating:general")
    assert meta["num_posts_used"] == 3


def test_comma_separated_tag_files() -> None:
    assert parse_tags("long hair, 1girl\n") == ["long_hair", "1girl"]
    assert parse_tags(" cat ears ,, 1girl, cat ears ") == ["cat_ears", "1girl"]
    assert parse_tags("long_hair 1girl  solo\n") == ["long_hair", "1girl", "solo"]
    assert parse_tags("1girl 1girl solo") == ["1girl", "solo"]


def test_comma_separated_posts_count_like_danbooru_ones(tmp_path: Path) -> None:
    data = write_posts(tmp_path, {"1": ("long hair, 1girl", None), "2": ("long_hair solo", None)})
    assert build_vocabulary(data)["counts"] == {"long_hair": 2, "1girl": 1, "solo": 1}


def test_same_posts_give_the_same_files(tmp_path: Path) -> None:
    first = write_posts(tmp_path / "first", POSTS)
    second = write_posts(tmp_path / "second", dict(reversed(POSTS.items())))
    build_vocabulary(first)
    build_vocabulary(second)
    assert first.vocab.read_bytes() == second.vocab.read_bytes()
    assert first.vocab_meta.read_bytes() == second.vocab_meta.read_bytes()


def test_missing_imgs_folder(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "nowhere")
    with pytest.raises(VocabularyError, match=f"^{data.imgs}: no such folder"):
        build_vocabulary(data)
    assert not data.vocab.exists()


def test_folder_without_posts(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    data.imgs.mkdir()
    Image.new("RGB", (8, 8)).save(data.imgs / "1.png")  # an image without a tag file is no post
    with pytest.raises(VocabularyError, match=f"^{data.imgs}: no tagged posts"):
        build_vocabulary(data)
    assert not data.vocab.exists()


def test_min_count_above_every_count(data: DataDir) -> None:
    with pytest.raises(VocabularyError, match="lower --min-count"):
        build_vocabulary(data, min_count=5)


def test_load_vocabulary_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match=f"^{tmp_path / 'vocab.txt'}: no vocabulary"):
        load_vocabulary(tmp_path / "vocab.txt")
    (tmp_path / "vocab.txt").write_text("")
    with pytest.raises(VocabularyError, match=f"^{tmp_path / 'vocab.txt'}: empty vocabulary"):
        load_vocabulary(tmp_path / "vocab.txt")


def test_hash_changes_with_order_and_content() -> None:
    tags = ["1girl", "solo", "long_hair"]
    assert vocabulary_hash(tags) == vocabulary_hash(list(tags))
    assert vocabulary_hash(tags) != vocabulary_hash(["solo", "1girl", "long_hair"])
    assert vocabulary_hash(tags) != vocabulary_hash([*tags, "smile"])
    assert vocabulary_hash(["a b"]) != vocabulary_hash(["a", "b"])
