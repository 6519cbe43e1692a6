"""Illustration vectors: --vec, --index, --similar and --duplicates, end to end on the session's
small trained data (copied first: these tests add posts, remove them and write indexes), and the
index's pieces on hand-made vectors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import synthetic
from alti2v import defaults
from alti2v.data.posts import find_image
from alti2v.data.records import open_db
from alti2v.tag.sheet import LINE_HEIGHT, PADDING, TITLE_HEIGHT
from alti2v.vectors.extract import FileVector, binary_codes, normalise, write_vectors
from alti2v.vectors.index import VectorIndex
from alti2v.vectors.layers import LAYERS
from alti2v.vectors.similar import SHEET_THUMB, duplicate_groups

# The session's model has random VGG16 weights (--weights none): its pooled features of different
# posts sit close together (up to 0.99906 apart, against at least 0.99947 for the planted copies),
# so the test sets a threshold between the two; trained models use the per-layer defaults
# measured by bench/layers.py.
DUPLICATE_FLAGS = ("--layer", "block5", "--duplicate-threshold", 0.99925)

# --- pieces, on hand-made vectors -------------------------------------------------------------


def unit(*values: float) -> np.ndarray:
    return normalise(np.array(values, dtype=np.float32))


def make_index(folder: Path, vectors: dict[str, np.ndarray]) -> VectorIndex:
    index = VectorIndex.empty(folder, {"layer": "test"}, 3)
    index.add(
        list(vectors), ["train"] * len(vectors), np.stack(list(vectors.values())),
        [[["1girl", 0.9]]] * len(vectors),
    )  # fmt: skip
    return index


def test_layer_names_are_the_cli_choices():
    assert tuple(LAYERS) == defaults.VECTOR_LAYERS


def test_index_search_save_load_add_remove(tmp_path):
    index = make_index(tmp_path, {"a": unit(1, 0, 0), "b": unit(1, 1, 0), "c": unit(0, 0, 1)})
    (first,) = index.search(unit(1, 0.1, 0)[np.newaxis], 3)
    assert [neighbour.post_id for neighbour in first] == ["a", "b", "c"]
    assert first[0].score == pytest.approx(float(unit(1, 0.1, 0) @ unit(1, 0, 0)), abs=1e-6)
    assert first[0].tags == [("1girl", 0.9)]
    index.save()
    index.remove(["a"])
    index.add(["d"], ["eval"], unit(1, 0.1, 0)[np.newaxis], [[]])
    index.save()
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "graph-000000000004.usearch",
        "index.json",
    ]  # fmt: skip: the first save's graph is gone
    loaded = VectorIndex.load(tmp_path)
    (found,) = loaded.search(unit(1, 0.1, 0)[np.newaxis], 3)
    assert [neighbour.post_id for neighbour in found] == ["d", "b", "c"]
    assert found[0].score == pytest.approx(1.0, abs=1e-6)
    assert loaded.posts["d"] == {"key": 3, "split": "eval", "tags": []}


def test_duplicate_groups_link_pairs_above_the_threshold_transitively(tmp_path):
    index = make_index(
        tmp_path,
        {
            "a": unit(1, 0, 0), "a2": unit(1, 0.01, 0), "a3": unit(1, 0.02, 0),
            "b": unit(0, 1, 0), "b2": unit(0.01, 1, 0),
            "c": unit(0, 0, 1), "d": unit(0, 0.3, 1),
        },
    )  # fmt: skip
    groups = duplicate_groups(index, threshold=0.999)
    assert [[post_id for post_id, _ in group] for group in groups] == [
        ["a", "a2", "a3"],
        ["b", "b2"],
    ]
    assert all(score >= 0.999 for group in groups for _, score in group)


def test_write_vectors_float_and_binary(tmp_path):
    vectors = [unit(1, -2, 3), unit(-1, 2, 0.5)]
    results = [
        FileVector(f"{name}.png", vector) for name, vector in zip("xy", vectors, strict=True)
    ]
    names = write_vectors(tmp_path / "v.npy", results, 3, binary=False)
    assert names.read_text() == "x.png\ny.png\n"
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), np.stack(vectors))
    write_vectors(tmp_path / "b.npy", results, 3, binary=True)
    assert np.load(tmp_path / "b.npy").tolist() == [[0b10100000], [0b01100000]]
    assert binary_codes(np.stack(vectors)).shape == (2, 1)
    write_vectors(tmp_path / "none.npy", [], 3, binary=False)
    assert np.load(tmp_path / "none.npy").shape == (0, 3)


# --- the CLI on the session's trained data -----------------------------------------------------


@pytest.fixture
def data_dir(trained, tmp_path) -> Path:
    """A copy of the trained data directory, model included, that a test may change."""
    copy = tmp_path / "data"
    shutil.copytree(trained.data_dir, copy, ignore=shutil.ignore_patterns("training"))
    return copy


def image_of(data_dir: Path, post_id: str) -> Path:
    return find_image(data_dir / "imgs", post_id)


def plant_copies(source: Path, folder: Path, stem: str) -> list[Path]:
    """A half-size PNG, a JPEG recompressed at quality 60 and a 90% centre crop of `source`."""
    with Image.open(source) as opened:
        rgba = opened.convert("RGBA")  # transparency on white, as alti2v.data.images decodes it
        picture = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    width, height = picture.size
    half, recompressed, crop = (
        folder / f"{stem}-{kind}" for kind in ("half.png", "q60.jpg", "crop.png")
    )
    picture.resize((width // 2, height // 2), Image.Resampling.BICUBIC).save(half)
    picture.save(recompressed, quality=60)
    picture.crop((width // 20, height // 20, width - width // 20, height - height // 20)).save(crop)
    return [half, recompressed, crop]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.slow
def test_similar_finds_the_image_itself_and_its_copies_first(alt_i2v, data_dir, tmp_path):
    original = image_of(data_dir, "3")
    half, recompressed, _ = plant_copies(original, tmp_path, "three")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    sheet = tmp_path / "sheet.png"
    result = alt_i2v(
        "--index", "--similar", original, half, broken, recompressed,
        "--neighbours", 3, "--json", "--sheet", sheet, "--data-dir", data_dir,
        expect=1,
    )  # fmt: skip
    assert "index: added 24, removed 0, 24 posts; model " in result.stdout
    records = json_lines(result.stdout.split("\n", 1)[1])
    assert [record["image"] for record in records] == [
        str(p) for p in (original, half, broken, recompressed)
    ]
    assert records[2]["error"].startswith(f"{broken}: cannot decode image")
    for record in (records[0], records[1], records[3]):
        neighbours = record["neighbours"]
        assert len(neighbours) == 3
        assert neighbours[0]["post_id"] == "3"
        assert neighbours[0]["path"] == str(original)
        assert neighbours[0]["score"] > neighbours[1]["score"]
        assert [n["score"] for n in neighbours] == sorted(
            (n["score"] for n in neighbours), reverse=True
        )
        assert len(neighbours[0]["tags"]) == 5
    assert records[0]["neighbours"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    broken_lines = [line for line in result.stderr.splitlines() if str(broken) in line]
    assert len(broken_lines) == 1 and broken_lines[0].endswith("; not searched")
    assert "Traceback" not in result.stderr
    with Image.open(sheet) as drawn:  # three answered queries, a row each: query and 3 results
        assert drawn.size == (
            4 * (SHEET_THUMB + 2 * PADDING) + PADDING,
            3 * (SHEET_THUMB + TITLE_HEIGHT + 4 * LINE_HEIGHT + 2 * PADDING) + PADDING,
        )


@pytest.mark.slow
def test_index_follows_posts_added_to_and_removed_from_the_dataset(alt_i2v, data_dir, tmp_path):
    alt_i2v("--index", "--data-dir", data_dir)
    synthetic.generate(data_dir / "imgs", 3, seed=5, start_id=101)
    gone = ["4", "9"]
    removed_image = tmp_path / f"gone{image_of(data_dir, '4').suffix}"
    shutil.copy(image_of(data_dir, "4"), removed_image)
    # --build never deletes records, so a post leaves the dataset as when the LevelDB is
    # rebuilt without its files: the files go, and so does its record.
    db = open_db(data_dir / "dataset.ldb")
    for post_id in gone:
        for path in (data_dir / "imgs").glob(f"{post_id}.*"):
            path.unlink()
        for split in ("train", "eval"):
            db.delete(f"{split}/{post_id}".encode())
    db.close()
    result = alt_i2v(
        "--build", "--index", "--similar", image_of(data_dir, "102"), removed_image,
        "--neighbours", 25, "--json", "--data-dir", data_dir,
    )  # fmt: skip
    assert "index: added 3, removed 2, 25 posts; model " in result.stdout
    new, removed = json_lines(result.stdout.split("index: ", 1)[1].split("\n", 1)[1])
    assert new["neighbours"][0]["post_id"] == "102"
    for record in (new, removed):
        found = {neighbour["post_id"] for neighbour in record["neighbours"]}
        assert found.isdisjoint(gone) and {"101", "102", "103"} <= found
    info = json.loads((data_dir / "index" / "logits" / "index.json").read_text())
    assert info["num_posts"] == 25 and set(gone).isdisjoint(info["posts"])


@pytest.mark.slow
def test_duplicates_finds_planted_copies_and_nothing_else(alt_i2v, data_dir):
    imgs = data_dir / "imgs"
    # Copies of two posts, planted as posts of their own with the same tags.
    for source_id, first_copy in (("7", 201), ("12", 211)):
        source = image_of(data_dir, source_id)
        for offset, copy in enumerate(plant_copies(source, imgs, f"{first_copy}")):
            copy.rename(imgs / f"{first_copy + offset}{copy.suffix}")
            shutil.copy(imgs / f"{source_id}.txt", imgs / f"{first_copy + offset}.txt")
    result = alt_i2v(
        "--build", "--index", "--duplicates", "--json", *DUPLICATE_FLAGS, "--data-dir", data_dir
    )
    groups = json_lines(result.stdout.split("index: ", 1)[1].split("\n", 1)[1])
    found = sorted(sorted(post["post_id"] for post in group["posts"]) for group in groups)
    assert found == [["12", "211", "212", "213"], ["201", "202", "203", "7"]], result.stdout


@pytest.mark.slow
def test_bad_queries_stop_with_one_line(alt_i2v, data_dir, trained):
    query = image_of(data_dir, "1")
    result = alt_i2v("--similar", query, "--data-dir", data_dir, expect=None)
    assert result.returncode == 3, result.stderr  # EXIT_FAILED: a stopped run, not a partial one
    assert result.stderr.strip().splitlines()[-1] == (
        f"alt_i2v.py: error: {data_dir / 'index' / 'logits'}: no index of layer logits; "
        "run --index first"
    )
    alt_i2v("--index", "--data-dir", data_dir)
    model = next((data_dir / "models").iterdir())
    model.rename(model.with_name(model.name + "-retrained"))  # now the newest is another model
    result = alt_i2v("--similar", query, "--data-dir", data_dir, expect=None)
    assert result.returncode == 3
    last = result.stderr.strip().splitlines()[-1]
    assert f"made by model {model.name}, layer logits, not model {model.name}-retrained" in last
    assert last.endswith("run --index to rebuild it") and "Traceback" not in result.stderr


@pytest.mark.slow
def test_vec_writes_unit_rows_and_their_files_and_reports_a_broken_one(alt_i2v, trained, tmp_path):
    images = [image_of(trained.data_dir, post_id) for post_id in ("1", "2")]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "out" / "v.npy"
    result = alt_i2v(
        "--vec", images[0], broken, images[1], "--vec-out", out, "--data-dir", trained.data_dir,
        expect=1,
    )  # fmt: skip
    assert (
        result.stdout
        == f"vec: 2 vectors (logits, float32) -> {out}, files -> {out.with_suffix('.txt')}\n"
    )
    vectors = np.load(out)
    assert vectors.shape == (2, trained.vocab_size) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert out.with_suffix(".txt").read_text() == f"{images[0]}\n{images[1]}\n"
    (broken_line,) = [line for line in result.stderr.splitlines() if str(broken) in line]
    assert (
        broken_line.startswith(f"{broken}: cannot decode image")
        and "Traceback" not in result.stderr
    )
    assert broken_line.endswith("; no vector")


def test_flags_of_a_mode_not_chosen_are_usage_errors(alt_i2v, tmp_path):
    for flags, message in (
        (("--index", "--binary"), "--binary needs --vec"),
        (("--index", "--sheet", "x.png"), "--sheet needs --pred or --similar"),
    ):
        result = alt_i2v(*flags, "--data-dir", tmp_path, expect=2)
        assert result.stderr.endswith(f"alt_i2v.py: error: {message}\n")
    assert list(tmp_path.iterdir()) == []
