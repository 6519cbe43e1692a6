"""Tests for --build (alti2v.data.build) and the batches read back from it (alti2v.train.batches):
the split by post id, records with the right pixels and labels, resuming a build (also after
SIGKILL), starting over when the inputs change, skips counted by reason, and the shuffled epochs."""

from __future__ import annotations

import json
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import synthetic
from alti2v.data import build as store
from alti2v.data.build import BuildSettings, build_dataset, split_of
from alti2v.data.images import load_image, to_model_input
from alti2v.data.layout import DataDir
from alti2v.data.posts import iter_posts
from alti2v.data.records import (
    StoreError,
    count_records,
    open_db,
    parse_record_key,
    read_meta,
    record_key,
    record_keys,
    unpack_record,
)
from alti2v.data.vocabulary import (
    VocabularyError,
    build_vocabulary,
    label_indices,
    load_vocabulary,
    multi_hot,
    tag_index,
)
from alti2v.train.batches import PostBatches, ReaderClosed, RecordReader, epoch_order

IMAGE_SIZE = 32  # small records keep these tests fast; nothing here depends on the size
SETTINGS = BuildSettings(image_size=IMAGE_SIZE, resize="area", eval_fraction=0.3, workers=1)
TAG_LISTS = (
    "1girl solo long_hair smile",
    "1girl solo short_hair",
    "2girls multiple_girls long_hair",
    "1girl solo long_hair hat",
    "2girls multiple_girls smile",
)
POST_COUNT = 20


def write_post(imgs: Path, post_id: int, tags: str, rating: str | None = "g") -> None:
    colour = ((post_id * 53) % 256, (post_id * 97) % 256, (post_id * 31) % 256)
    image = Image.new("RGB", (40 + post_id, 30), colour)
    image.paste((255, 255, 255), (0, 0, 10, 10))
    image.save(imgs / f"{post_id}.png")
    (imgs / f"{post_id}.txt").write_text(tags + "\n")
    if rating is not None:
        (imgs / f"{post_id}.json").write_text(json.dumps({"id": post_id, "rating": rating}))


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    """POST_COUNT small posts and their whole vocabulary."""
    data = DataDir(tmp_path)
    data.imgs.mkdir()
    for post_id in range(1, POST_COUNT + 1):
        write_post(data.imgs, post_id, TAG_LISTS[post_id % len(TAG_LISTS)], "gs"[post_id % 2])
    build_vocabulary(data)
    return data


def stored_records(data: DataDir) -> dict[bytes, tuple[np.ndarray, list[int]]]:
    db = open_db(data.db)
    try:
        return {
            key: unpack_record(value)
            for key, value in db.iterator()
            if key.startswith((b"train/", b"eval/"))
        }
    finally:
        db.close()


def split_counts(records: dict[bytes, object]) -> dict[str, int]:
    """The summary's num_train and num_eval as the records say (the build counts digests)."""
    splits = [key.split(b"/")[0].decode() for key in records]
    return {"num_train": splits.count("train"), "num_eval": splits.count("eval")}


def expected_key(post_id: str, eval_fraction: float = SETTINGS.eval_fraction) -> bytes:
    return record_key(split_of(post_id, eval_fraction), post_id)


def test_split_of_is_deterministic_and_near_the_fraction() -> None:
    post_ids = [str(post_id) for post_id in range(1, 2001)]
    splits = [split_of(post_id, 0.2) for post_id in post_ids]
    assert splits == [split_of(post_id, 0.2) for post_id in post_ids]
    assert set(splits) == {"train", "eval"}
    assert 0.17 <= splits.count("eval") / len(splits) <= 0.23
    assert all(split_of(post_id, 0.0) == "train" for post_id in post_ids)


def test_split_of_grows_by_moving_posts_to_eval_only() -> None:
    post_ids = [str(post_id) for post_id in range(1, 501)]
    small = {post_id for post_id in post_ids if split_of(post_id, 0.1) == "eval"}
    large = {post_id for post_id in post_ids if split_of(post_id, 0.3) == "eval"}
    assert small < large


def test_build_packs_every_post_with_its_pixels_and_labels(data: DataDir) -> None:
    summary = build_dataset(data, SETTINGS)
    posts = list(iter_posts(data.imgs))
    num_eval = sum(split_of(post.post_id, SETTINGS.eval_fraction) == "eval" for post in posts)
    assert 0 < num_eval < POST_COUNT
    assert summary == {
        "packed": POST_COUNT,
        "repacked": 0,
        "moved": 0,
        "removed": 0,
        "unchanged": 0,
        "skipped": {},
        "bad_json": 0,
        "failed": 0,
        "num_train": POST_COUNT - num_eval,
        "num_eval": num_eval,
    }
    tags = load_vocabulary(data.vocab)
    records = stored_records(data)
    assert set(records) == {expected_key(post.post_id) for post in posts}
    for post in posts:
        pixels, labels = records[expected_key(post.post_id)]
        assert pixels.dtype == np.uint8
        assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
        np.testing.assert_array_equal(pixels, load_image(post.image, IMAGE_SIZE, "area"))
        assert [tags[label] for label in labels] == post.labels()


def test_meta_records_what_the_records_depend_on(data: DataDir) -> None:
    build_dataset(data, SETTINGS)
    db = open_db(data.db)
    try:
        meta = read_meta(db, data.db)
        assert count_records(db) == {
            "train": len(record_keys(db, "train")),
            "eval": len(record_keys(db, "eval")),
        }
    finally:
        db.close()
    vocab_meta = json.loads(data.vocab_meta.read_text())
    assert meta == {
        "format": 2,
        "vocab_hash": vocab_meta["hash"],
        "num_tags": vocab_meta["num_tags"],
        "image_size": IMAGE_SIZE,
        "resize": "area",
        "max_pixels": SETTINGS.max_pixels,
        "eval_fraction": SETTINGS.eval_fraction,
        "filter": None,
        "complete": True,
    }


def test_second_build_packs_nothing(data: DataDir) -> None:
    build_dataset(data, SETTINGS)
    before = stored_records(data)
    summary = build_dataset(data, SETTINGS)
    assert (summary["packed"], summary["unchanged"]) == (0, POST_COUNT)
    after = stored_records(data)
    assert after.keys() == before.keys()


def test_new_posts_are_added_to_a_built_dataset(data: DataDir) -> None:
    build_dataset(data, SETTINGS)
    write_post(data.imgs, 100, TAG_LISTS[0])
    summary = build_dataset(data, SETTINGS)
    assert (summary["packed"], summary["unchanged"]) == (1, POST_COUNT)
    assert expected_key("100") in stored_records(data)


@pytest.mark.parametrize(
    "change",
    [
        {"resize": "nearest"},
        {"image_size": IMAGE_SIZE + 8},
    ],
)
def test_changed_settings_pack_everything_again(data: DataDir, change: dict) -> None:
    build_dataset(data, SETTINGS)
    settings = BuildSettings(**{**SETTINGS.__dict__, **change})
    summary = build_dataset(data, settings)
    assert (summary["packed"], summary["unchanged"]) == (POST_COUNT, 0)
    records = stored_records(data)
    assert len(records) == POST_COUNT
    image_size = settings.image_size
    assert all(pixels.shape == (image_size, image_size, 3) for pixels, _ in records.values())
    post_ids = [post.post_id for post in iter_posts(data.imgs)]
    assert set(records) == {expected_key(post_id, settings.eval_fraction) for post_id in post_ids}


def test_changed_eval_fraction_moves_records_without_decoding(data: DataDir, monkeypatch) -> None:
    build_dataset(data, SETTINGS)
    before = stored_records(data)
    settings = BuildSettings(**{**SETTINGS.__dict__, "eval_fraction": 0.5})
    post_ids = [post.post_id for post in iter_posts(data.imgs)]
    moving = [pid for pid in post_ids if split_of(pid, 0.5) != split_of(pid, 0.3)]
    assert moving

    def no_decoding(*args, **kwargs):
        pytest.fail("a record was decoded again")

    monkeypatch.setattr("alti2v.data.build.load_image_or_error", no_decoding)
    summary = build_dataset(data, settings)
    assert (summary["moved"], summary["unchanged"], summary["packed"]) == (
        len(moving),
        POST_COUNT - len(moving),
        0,
    )
    records = stored_records(data)
    assert {name: summary[name] for name in ("num_train", "num_eval")} == split_counts(records)
    # Every post in exactly one split, the new one, with the same record as before.
    assert set(records) == {expected_key(post_id, 0.5) for post_id in post_ids}
    for post_id in post_ids:
        pixels, labels = records[expected_key(post_id, 0.5)]
        old_pixels, old_labels = before[expected_key(post_id, 0.3)]
        np.testing.assert_array_equal(pixels, old_pixels)
        assert labels == old_labels


def test_build_reconciles_the_database_with_imgs(data: DataDir) -> None:
    build_dataset(data, SETTINGS)
    tags = load_vocabulary(data.vocab)
    for suffix in (".png", ".txt", ".json"):
        (data.imgs / f"1{suffix}").unlink()  # post 1 deleted
    (data.imgs / "2.png").unlink()  # post 2 loses its image
    write_post(data.imgs, 3, "1girl solo long_hair smile", "s")  # retagged
    Image.new("RGB", (30, 30), (1, 2, 3)).save(data.imgs / "4.png")  # a new image
    (data.imgs / "5.txt").write_text("not_in_the_vocabulary\n")  # nothing left to learn
    (data.imgs / "5.json").unlink()

    summary = build_dataset(data, SETTINGS)

    assert summary["removed"] == 3  # 1, 2 and 5
    assert (summary["repacked"], summary["packed"]) == (2, 0)  # 3 and 4
    assert summary["unchanged"] == POST_COUNT - 5
    assert summary["skipped"] == {"no image": 1, "no vocabulary tag": 1}
    records = stored_records(data)
    assert {name: summary[name] for name in ("num_train", "num_eval")} == split_counts(records)
    assert {key.decode().split("/")[1] for key in records} == {
        str(post_id) for post_id in range(3, POST_COUNT + 1) if post_id != 5
    }
    _, labels = records[expected_key("3")]
    assert [tags[label] for label in labels] == [
        "1girl", "solo", "long_hair", "smile", "rating:sensitive"
    ]  # fmt: skip
    np.testing.assert_array_equal(
        records[expected_key("4")][0], load_image(data.imgs / "4.png", IMAGE_SIZE, "area")
    )
    assert build_dataset(data, SETTINGS)["unchanged"] == POST_COUNT - 3


def reconcile_in_chunks(data: DataDir, chunk_posts: int, monkeypatch) -> dict:
    """Build, change imgs/ in every way a build reconciles, build again `chunk_posts` at a time."""
    build_dataset(data, SETTINGS)
    for suffix in (".png", ".txt", ".json"):
        (data.imgs / f"1{suffix}").unlink()  # deleted
    (data.imgs / "12.png").unlink()  # loses its image
    write_post(data.imgs, 7, "1girl solo long_hair smile", "s")  # retagged
    (data.imgs / "15.txt").write_text("not_in_the_vocabulary\n")  # nothing left to learn
    (data.imgs / "15.json").unlink()  # and no rating tag
    (data.imgs / "16.png").write_bytes(b"no longer an image")  # repacked, fails: removed
    write_post(data.imgs, 30, "1girl solo")  # new
    monkeypatch.setattr("alti2v.data.build.CHUNK_POSTS", chunk_posts)
    settings = BuildSettings(**{**SETTINGS.__dict__, "eval_fraction": 0.5})  # and some move
    return build_dataset(data, settings)


def test_a_build_in_small_chunks_does_what_one_chunk_does(
    tmp_path: Path, data: DataDir, monkeypatch
) -> None:
    other = DataDir(tmp_path / "other")
    shutil.copytree(data.imgs, other.imgs)
    shutil.copy(data.vocab, other.vocab)
    shutil.copy(data.vocab_meta, other.vocab_meta)
    in_one = reconcile_in_chunks(data, POST_COUNT * 2, monkeypatch)
    in_chunks = reconcile_in_chunks(other, 3, monkeypatch)
    assert in_chunks == in_one
    assert in_one["removed"] == 4 and in_one["moved"] > 0  # 1, 12, 15, 16
    assert (in_one["packed"], in_one["repacked"]) == (1, 1)  # 30; 7
    one, chunked = stored_records(data), stored_records(other)
    assert set(chunked) == set(one)
    for key, (pixels, labels) in one.items():
        np.testing.assert_array_equal(chunked[key][0], pixels)
        assert chunked[key][1] == labels


def test_a_build_holds_one_chunk_of_posts_at_a_time(data: DataDir, monkeypatch) -> None:
    monkeypatch.setattr("alti2v.data.build.CHUNK_POSTS", 3)
    drawn = []

    def counted_posts(imgs: Path):
        for post in iter_posts(imgs):
            drawn.append(post.post_id)
            yield post

    stored = store._store

    def store_and_count(batches, to_pack, *rest) -> None:
        # A chunk is stored before any later post is read.
        assert len(drawn) <= 3
        drawn[: len(to_pack)] = []
        stored(batches, to_pack, *rest)

    monkeypatch.setattr("alti2v.data.build.iter_posts", counted_posts)
    monkeypatch.setattr("alti2v.data.build._store", store_and_count)
    assert build_dataset(data, SETTINGS)["packed"] == POST_COUNT


def test_a_post_filtered_out_later_is_removed_and_the_filter_kept_in_meta(data: DataDir) -> None:
    build_dataset(data, SETTINGS)
    # The same vocabulary, now made with --filter solo: nothing to pack again, posts to drop.
    vocab_meta = json.loads(data.vocab_meta.read_text())
    data.vocab_meta.write_text(json.dumps({**vocab_meta, "filter": "solo"}))
    summary = build_dataset(data, SETTINGS)
    without = sum("solo" not in post.labels() for post in iter_posts(data.imgs))
    assert 0 < without < POST_COUNT
    assert summary["skipped"] == {"filtered out": without}
    assert (summary["removed"], summary["unchanged"]) == (without, POST_COUNT - without)
    assert len(stored_records(data)) == POST_COUNT - without
    db = open_db(data.db)
    try:
        assert read_meta(db, data.db)["filter"] == "solo"
    finally:
        db.close()


def test_changed_vocabulary_packs_everything_again(data: DataDir) -> None:
    build_dataset(data, SETTINGS)
    build_vocabulary(data, vocab_size=3)
    tags = load_vocabulary(data.vocab)
    summary = build_dataset(data, SETTINGS)
    assert summary["unchanged"] == 0
    assert summary["packed"] + sum(summary["skipped"].values()) == POST_COUNT
    for _, labels in stored_records(data).values():
        assert labels
        assert all(0 <= label < len(tags) for label in labels)


def test_skips_are_counted_by_reason_and_the_rest_is_packed(data: DataDir) -> None:
    (data.imgs / "50.png").write_bytes(b"this is not an image")
    (data.imgs / "50.txt").write_text("1girl solo\n")
    (data.imgs / "51.txt").write_text("1girl solo\n")  # tags without an image
    # No .json (so no rating tag) and no tag that is in the vocabulary:
    write_post(data.imgs, 52, "very_rare_tag", rating=None)
    build_vocabulary(data, min_count=2)
    assert "very_rare_tag" not in load_vocabulary(data.vocab)
    summary = build_dataset(data, SETTINGS)
    assert summary["skipped"] == {"unreadable": 1, "no image": 1, "no vocabulary tag": 1}
    assert summary["packed"] == POST_COUNT
    records = stored_records(data)
    assert len(records) == POST_COUNT
    assert not {expected_key(post_id) for post_id in ("50", "51", "52")} & set(records)


def test_bad_tag_and_metadata_files_are_counted(data: DataDir, caplog) -> None:
    (data.imgs / "3.json").write_text("{not json")
    (data.imgs / "4.txt").write_bytes(b"1girl \xff\xfe")
    summary = build_dataset(data, SETTINGS)
    assert summary["skipped"] == {"tags not UTF-8": 1}
    assert (summary["bad_json"], summary["failed"]) == (1, 2)
    assert summary["packed"] == POST_COUNT - 1
    tags = load_vocabulary(data.vocab)
    _, labels = stored_records(data)[expected_key("3")]
    assert [tags[label] for label in labels] == TAG_LISTS[3].split()  # no rating tag
    warned = {record.getMessage().split(": ")[0] for record in caplog.records}
    assert warned == {str(data.imgs / "3.json"), str(data.imgs / "4.txt")}


def test_posts_outside_the_vocabulary_filter_are_skipped(data: DataDir) -> None:
    build_vocabulary(data, filter_tag="2girls")
    summary = build_dataset(data, SETTINGS)
    with_tag = sum("2girls" in post.labels() for post in iter_posts(data.imgs))
    assert summary["packed"] == with_tag
    assert summary["skipped"] == {"filtered out": POST_COUNT - with_tag}


def test_build_without_vocabulary(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match="run --maeshori first"):
        build_dataset(DataDir(tmp_path), SETTINGS)


def test_open_db_without_dataset(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=f"^{tmp_path / 'dataset.ldb'}: no dataset"):
        open_db(tmp_path / "dataset.ldb")


# --- a build killed mid-run ---------------------------------------------------------------

KILL_POST_COUNT = 150
LARGE_SIDE = 1200  # pixels: large images decode slowly enough to kill the build midway
SOURCE_POSTS = 5


def write_slow_posts(imgs: Path, scratch: Path) -> None:
    """KILL_POST_COUNT posts made of a few synthetic ones, their images enlarged."""
    imgs.mkdir(parents=True)
    synthetic.generate(scratch, SOURCE_POSTS, seed=3)
    for source in iter_posts(scratch):
        with Image.open(source.image) as image:
            enlarged = image.convert("RGB").resize((LARGE_SIDE, LARGE_SIDE))
        enlarged.save(scratch / f"large-{source.post_id}.png")
    for post_id in range(1, KILL_POST_COUNT + 1):
        source_id = (post_id - 1) % SOURCE_POSTS + 1
        shutil.copyfile(scratch / f"large-{source_id}.png", imgs / f"{post_id}.png")
        shutil.copyfile(scratch / f"{source_id}.json", imgs / f"{post_id}.json")
        shutil.copyfile(scratch / f"{source_id}.txt", imgs / f"{post_id}.txt")


def packing_progress(stderr: bytes) -> int:
    """The largest count the "packing" progress bar has shown."""
    counts = re.findall(rb"packing:[^\r\n]*?\| *(\d+)/\d+", stderr)
    return max((int(count) for count in counts), default=0)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "workers"),
    [(signal.SIGKILL, 1), (signal.SIGINT, 2)],  # Ctrl-C with the decoding pool running
    ids=["SIGKILL", "Ctrl-C"],
)
def test_build_stopped_mid_run_resumes_and_packs_every_post_once(
    tmp_path: Path, start_alt_i2v, alt_i2v, stop: signal.Signals, workers: int
) -> None:
    data = DataDir(tmp_path / "data")
    write_slow_posts(data.imgs, tmp_path / "scratch")
    build_vocabulary(data, vocab_size=10)
    arguments = ("--build", "--build-workers", workers, "--data-dir", data.root)

    process = start_alt_i2v(*arguments)
    stderr = bytearray()

    def read_stderr() -> None:
        for chunk in iter(lambda: process.stderr.read1(4096), b""):
            stderr.extend(chunk)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    # Past the first write batch (64 posts) and well before the end, kill it.
    deadline = time.monotonic() + 120
    while packing_progress(bytes(stderr)) < 70:
        assert process.poll() is None, bytes(stderr).decode(errors="replace")
        assert time.monotonic() < deadline, "the build showed no progress"
        time.sleep(0.01)
    shown = packing_progress(bytes(stderr))
    process.send_signal(stop)
    process.wait(timeout=60)
    reader.join()
    process.stdout.close()
    process.stderr.close()
    if stop == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        messages = bytes(stderr).decode(errors="replace")
        assert process.returncode == 130, messages
        assert "alt_i2v.py: interrupted; run the same command again to resume" in messages
        assert "Traceback" not in messages

    result = alt_i2v(*arguments)
    match = re.fullmatch(
        r"build: packed (\d+), repacked 0, moved 0, removed 0, unchanged (\d+), skipped 0; "
        r"train (\d+), eval (\d+) -> (.+)\n",
        result.stdout,
    )
    assert match, result.stdout
    packed, unchanged, num_train, num_eval = (int(match.group(number)) for number in range(1, 5))
    assert match.group(5) == str(data.db)
    assert packed + unchanged == KILL_POST_COUNT
    # A kill loses at most the unwritten batch; Ctrl-C writes every post it had decoded.
    assert unchanged >= (64 if stop == signal.SIGKILL else shown - 1)
    assert packed >= 1  # and the kill came before the last one
    assert num_train + num_eval == KILL_POST_COUNT

    tags = load_vocabulary(data.vocab)
    records = stored_records(data)  # the database opens after the kill
    expected = {expected_key(str(post_id), 0.2) for post_id in range(1, KILL_POST_COUNT + 1)}
    assert set(records) == expected  # every post once, in its one split
    posts = {post.post_id: post for post in iter_posts(data.imgs)}
    for key, (pixels, labels) in records.items():
        assert pixels.shape == (150, 150, 3), key
        post = posts[key.decode().split("/")[1]]
        assert [tags[label] for label in labels] == [tag for tag in post.labels() if tag in tags]


# --- batches ------------------------------------------------------------------------------


def test_post_batches_shapes_and_values(data: DataDir) -> None:
    build_dataset(data, SETTINGS)
    num_tags = len(load_vocabulary(data.vocab))
    records = stored_records(data)
    db = open_db(data.db)
    try:
        keys = epoch_order(record_keys(db, "train"), seed=0, epoch=0)
        batches = PostBatches(db, keys, batch_size=4, num_tags=num_tags, preprocess="vgg")
        assert len(batches) == -(-len(keys) // 4)
        for index in range(len(batches)):
            images, targets = batches[index]
            chosen = keys[index * 4 : (index + 1) * 4]
            assert images.shape == (len(chosen), IMAGE_SIZE, IMAGE_SIZE, 3)
            assert images.dtype == np.float32
            assert targets.shape == (len(chosen), num_tags)
            assert targets.dtype == np.float32
            for row, key in enumerate(chosen):
                pixels, labels = records[key]
                np.testing.assert_array_equal(images[row], to_model_input(pixels, "vgg"))
                np.testing.assert_array_equal(targets[row], multi_hot([labels], num_tags)[0])
        assert len(keys) % 4 != 0  # so the last batch above was a short one
    finally:
        db.close()


def test_multi_hot() -> None:
    expected = [[1, 0, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1]]
    np.testing.assert_array_equal(multi_hot([[0, 3], [], [4]], 5), expected)
    assert multi_hot([], 3).shape == (0, 3)
    assert multi_hot([[1]], 2, np.bool_).tolist() == [[False, True]]


def test_tag_names_to_label_indices() -> None:
    index = tag_index(["1girl", "solo", "hat"])
    assert label_indices(["hat", "unknown", "1girl"], index) == [2, 0]


def test_record_keys_parse_back() -> None:
    assert parse_record_key(record_key("eval", "12345")) == ("eval", "12345")
    assert parse_record_key(record_key("train", "a/b")) == ("train", "a/b")


def test_epoch_order_is_a_permutation_by_seed_and_epoch() -> None:
    keys = [f"train/{post_id}".encode() for post_id in range(50)]
    first = epoch_order(keys, seed=0, epoch=0)
    assert sorted(first) == sorted(keys)
    assert len(set(first)) == len(keys)
    assert first != keys
    assert epoch_order(keys, seed=0, epoch=0) == first
    assert epoch_order(keys, seed=0, epoch=1) != first
    assert epoch_order(keys, seed=1, epoch=0) != first
    assert epoch_order(keys, seed=0, epoch=7) == epoch_order(list(keys), seed=0, epoch=7)


def test_a_database_in_use_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    holder = open_db(tmp_path / "dataset.ldb", create=True)
    try:
        with pytest.raises(StoreError, match=r"in use by another alt_i2v\.py"):
            open_db(tmp_path / "dataset.ldb")
    finally:
        holder.close()
    (tmp_path / "not-a-db").write_text("")
    with pytest.raises(StoreError, match=r"not-a-db: cannot open \(IO error: .*\)"):
        open_db(tmp_path / "not-a-db", create=True)


def test_the_reader_closes_the_database_after_the_reads_in_flight() -> None:
    class SlowDatabase:
        """A database whose reads block until released, and that records its close."""

        def __init__(self):
            self.reading, self.release, self.closed = threading.Event(), threading.Event(), False

        def get(self, key: bytes, fill_cache: bool = True) -> bytes:
            self.reading.set()
            self.release.wait(10)
            assert not self.closed, "read after close"
            return b"value"

        def close(self) -> None:
            self.closed = True

    database = SlowDatabase()
    reader = RecordReader(database)
    answers = []
    prefetch = threading.Thread(target=lambda: answers.append(reader.get(b"train/1")))
    prefetch.start()
    assert database.reading.wait(10)
    closing = threading.Thread(target=reader.close)
    closing.start()
    closing.join(0.2)
    assert closing.is_alive() and not database.closed  # waits for the read in flight
    database.release.set()
    prefetch.join(10)
    closing.join(10)
    assert answers == [b"value"] and database.closed
    with pytest.raises(ReaderClosed):
        reader.get(b"train/2")  # a prefetch thread left behind by Keras gets an error, not a crash


def test_the_leveldb_binding_is_the_one_requirements_txt_installs(tmp_path: Path) -> None:
    # requirements.txt asks for plyvel before Python 3.12 and plyvel-next from 3.12 on (where
    # plyvel has no wheel); records.py must use the one that is there, and both speak one API.
    import sys

    from alti2v.data import records

    expected = "plyvel_next" if sys.version_info >= (3, 12) else "plyvel"
    assert records.plyvel.__name__ == expected
    db = open_db(tmp_path / "db", create=True)
    db.put(b"train/1", b"value")
    assert db.get(b"train/1") == b"value"
    assert [key for key, _ in db.iterator(prefix=b"train/")] == [b"train/1"]
    db.close()
    with pytest.raises(StoreError, match="in use by another"):
        held = open_db(tmp_path / "db")
        open_db(tmp_path / "db")
    held.close()
