"""--export: the WD tagger layout. The graph agrees with the trained Keras model (inference form)
on the same input; the CSV's rows are what kohya indexes (ratings, general, character); fed
exactly as kohya's tagger feeds a WD model (bench.common.KOHYA_REVISION), the folder gives the
caption the model's own probabilities give; a destination that holds files is refused before
any work. Run as --model, the folder tags with its own vocabulary and input, and its embedding
output gives the Keras model's --vec vectors, which --index and --similar search."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
from PIL import Image

from alti2v.data.images import RESIZE_FILTERS, load_image
from alti2v.data.posts import find_image, iter_posts
from alti2v.export.graph import IMAGENET_MEAN_BGR, WD_INPUT_SIZE, resize_matrix
from alti2v.model.network import head_layers
from alti2v.model.saved import load_model
from bench.common import kohya_wd14_input

# kohya's tag_images_by_wd14_tagger.py defaults.
KOHYA_GENERAL_THRESHOLD, KOHYA_CHARACTER_THRESHOLD = 0.35, 0.85
# The largest difference allowed between an export's --vec vector and the Keras model's on the
# same white-padded image (unit vectors; the Keras path rounds its 150 resize to 8 bits): 0.0015
# measured on the session's model, whose vectors of two posts differ by 0.04 to 0.10.
VECTOR_TOLERANCE = 0.005


@pytest.fixture(scope="module")
def categorised(trained, tmp_path_factory) -> Path:
    """A copy of the trained model whose vocabulary has a character and a copyright tag."""
    folder = tmp_path_factory.mktemp("categorised") / "model"
    shutil.copytree(trained.model_folder, folder)
    info = json.loads((folder / "model.json").read_text())
    tags = (folder / "vocab.txt").read_text().split()
    plain = [tag for tag in tags if not tag.startswith("rating:")]
    info["categories"] = {
        **info.get("categories", {}),
        plain[0]: "character",
        plain[1]: "copyright",
    }
    (folder / "model.json").write_text(json.dumps(info))
    return folder


def export(alt_i2v, trained, model: Path, destination: Path, *flags: str, expect: int | None = 0):
    return alt_i2v(
        "--export",
        destination,
        "--model",
        model,
        "--data-dir",
        trained.data_dir,
        *flags,
        expect=expect,
    )


@pytest.fixture(scope="module")
def exported(alt_i2v, trained, categorised, tmp_path_factory) -> Path:
    destination = tmp_path_factory.mktemp("wd") / "alt-i2v-wd-tagger"
    result = export(alt_i2v, trained, categorised, destination)
    assert result.stdout.startswith(f"export: {categorised} -> {destination}: 4 ratings, ")
    return destination


def csv_rows(folder: Path) -> list[dict]:
    with (folder / "selected_tags.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("resize", ["area", "bilinear", "bicubic", "lanczos"])
def test_the_resize_matrix_is_the_pillow_filter_itself(resize) -> None:
    rng = np.random.default_rng(0)
    plane = rng.uniform(0, 255, (WD_INPUT_SIZE, WD_INPUT_SIZE)).astype(np.float32)
    pillow = np.asarray(Image.fromarray(plane, mode="F").resize((150, 150), RESIZE_FILTERS[resize]))
    matrix = resize_matrix(WD_INPUT_SIZE, 150, resize)
    np.testing.assert_allclose(matrix @ plane @ matrix.T, pillow, atol=2e-3)
    assert not np.allclose(matrix, resize_matrix(WD_INPUT_SIZE, 150, "nearest"))


def test_the_graph_agrees_with_the_trained_model_in_inference_form(exported, categorised):
    loaded = load_model(categorised)
    rng = np.random.default_rng(1)
    bgr = rng.uniform(0, 255, (3, WD_INPUT_SIZE, WD_INPUT_SIZE, 3)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(exported / "model.onnx"))
    # The probabilities first, for the tools that read outputs[0]; the embedding second.
    assert [output.name for output in session.get_outputs()] == ["output", "embedding"]
    assert session.get_modelmeta().custom_metadata_map == {"alt_i2v.embedding_layer": "logits"}
    output, embedding = session.run(None, {"input": bgr})
    matrix = resize_matrix(WD_INPUT_SIZE, loaded.model.input_shape[1], loaded.info["resize"])
    small = np.einsum("oh,nhwc,pw->nopc", matrix, bgr, matrix)
    keras_input = small - np.array(IMAGENET_MEAN_BGR, np.float32)  # BGR already
    expected = keras.ops.convert_to_numpy(loaded.model(keras_input, training=False))
    logits = keras.Model(loaded.model.input, head_layers(loaded.model)[2].output)
    logits = keras.ops.convert_to_numpy(logits(keras_input, training=False))
    np.testing.assert_allclose(embedding, logits, atol=1e-4)  # in the vocabulary's order
    np.testing.assert_allclose(1 / (1 + np.exp(-embedding)), expected, atol=1e-5)
    column = {tag: index for index, tag in enumerate(loaded.tags)}
    for row_number, row in enumerate(csv_rows(exported)):
        tag = f"rating:{row['name']}" if row["category"] == "9" else row["name"]
        wanted = expected[:, column[tag]] if tag in column else np.zeros(len(bgr))
        np.testing.assert_allclose(output[:, row_number], wanted, atol=1e-5, err_msg=tag)
    # BatchNormalization in training form would give other outputs: the test can tell.
    assert not np.allclose(keras.ops.convert_to_numpy(loaded.model(keras_input, training=True)),
                           expected, atol=1e-3)  # fmt: skip


def test_the_csv_lists_the_four_ratings_then_general_then_character(exported, categorised):
    rows = csv_rows(exported)
    assert list(rows[0]) == ["tag_id", "name", "category", "count"]  # no --eval: no thresholds
    assert [row["name"] for row in rows[:4]] == ["general", "sensitive", "questionable", "explicit"]
    categories = [int(row["category"]) for row in rows]
    assert categories[:4] == [9] * 4
    assert categories[4:] == sorted(categories[4:])  # every general (0) before every character
    assert set(categories[4:]) == {0, 4}
    assert [row["tag_id"] for row in rows] == [str(number) for number in range(len(rows))]
    info = json.loads((categorised / "model.json").read_text())
    tags = [tag for tag in (categorised / "vocab.txt").read_text().split()]
    plain = [tag for tag in tags if not tag.startswith("rating:")]
    assert [row["name"] for row in rows if row["category"] == "4"] == [plain[0]]
    assert plain[1] in [row["name"] for row in rows if row["category"] == "0"]  # folded
    assert {row["name"]: int(row["count"]) for row in rows[4:]} == {
        tag: info["counts"][tag] for tag in plain
    }
    preprocess = json.loads((exported / "preprocess.json").read_text())
    assert preprocess["input"]["channels"] == "BGR" and preprocess["input"]["size"] == 448
    card = (exported / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: onnx\n")
    assert f"# alt-i2v tagger: {len(tags)} tags" in card


def test_drop_leaves_the_other_tags_out_and_the_graph_follows(alt_i2v, trained, categorised,
                                                              tmp_path):  # fmt: skip
    result = export(alt_i2v, trained, categorised, tmp_path / "wd", "--export-other-tags", "drop")
    assert ", 1 left out;" in result.stdout
    rows = csv_rows(tmp_path / "wd")
    session = onnxruntime.InferenceSession(str(tmp_path / "wd" / "model.onnx"))
    assert session.get_outputs()[0].shape[1] == len(rows)
    tags = (categorised / "vocab.txt").read_text().split()
    copyright_tag = [tag for tag in tags if not tag.startswith("rating:")][1]
    assert copyright_tag not in [row["name"] for row in rows]


def test_kohya_s_tagger_reads_the_folder_and_captions_by_the_models_probabilities(
    exported, trained, categorised
):
    rows = csv_rows(exported)
    # kohya's reading of the CSV: names by category, in file order.
    rating_tags = [row["name"] for row in rows if row["category"] == "9"]
    general_tags = [row["name"] for row in rows if row["category"] == "0"]
    character_tags = [row["name"] for row in rows if row["category"] == "4"]
    session = onnxruntime.InferenceSession(str(exported / "model.onnx"))
    input_name = session.get_inputs()[0].name
    paths = [post.image for post in iter_posts(trained.data_dir / "imgs")][:4]
    probabilities = session.run(None, {input_name: np.array([kohya_wd14_input(p) for p in paths])})[
        0
    ]
    loaded = load_model(categorised)
    column = {tag: index for index, tag in enumerate(loaded.tags)}
    for path, prob in zip(paths, probabilities, strict=True):
        caption = []
        for index, value in enumerate(prob[4:]):  # kohya's loop, as written
            if index < len(general_tags) and value >= KOHYA_GENERAL_THRESHOLD:
                caption.append(general_tags[index])
            elif index >= len(general_tags) and value >= KOHYA_CHARACTER_THRESHOLD:
                caption.append(character_tags[index - len(general_tags)])
        rating = rating_tags[int(prob[:4].argmax())]
        # The same image as the graph sees it, through Keras: the tags it gives by name.
        bgr = kohya_wd14_input(path)
        matrix = resize_matrix(WD_INPUT_SIZE, 150, loaded.info["resize"])
        small = np.einsum("oh,hwc,pw->opc", matrix, bgr, matrix) - np.array(IMAGENET_MEAN_BGR)
        own = loaded.model(small[None].astype(np.float32), training=False)
        own = keras.ops.convert_to_numpy(own)[0]
        threshold = dict.fromkeys(general_tags, KOHYA_GENERAL_THRESHOLD)
        threshold |= dict.fromkeys(character_tags, KOHYA_CHARACTER_THRESHOLD)
        expected = [
            tag for tag in general_tags + character_tags if own[column[tag]] >= threshold[tag]
        ]
        assert caption == expected, path
        ratings = {name: own[column[f"rating:{name}"]] if f"rating:{name}" in column else 0.0
                   for name in rating_tags}  # fmt: skip
        assert rating == max(ratings, key=ratings.get)


def test_an_export_into_a_folder_that_holds_files_is_refused_before_any_work(
    alt_i2v, trained, tmp_path
):
    destination = tmp_path / "taken"
    destination.mkdir()
    (destination / "keep.txt").write_text("mine")
    result = export(alt_i2v, trained, trained.model_folder, destination, expect=None)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"alt_i2v.py: error: --export {destination}: exists and is not an empty folder; "
        "give a new one"
    )
    assert [path.name for path in destination.iterdir()] == ["keep.txt"]
    assert [path.name for path in tmp_path.iterdir()] == ["taken"]  # nothing half written


# --- a WD-layout folder as --model ------------------------------------------------------------


def wd_pred(alt_i2v, trained, folder: Path, image: Path, *flags, expect: int | None = 0):
    return alt_i2v("--pred", image, "--model", folder, "--json", "--top-k", 0, "--tta", "none",
                   "--quiet", "--data-dir", trained.data_dir, *flags, expect=expect)  # fmt: skip


def test_pred_runs_an_exported_folder_with_its_vocabulary_and_the_wd_input(
    alt_i2v, trained, exported, categorised, tmp_path
):
    image = next(post.image for post in iter_posts(trained.data_dir / "imgs"))
    record = json.loads(wd_pred(alt_i2v, trained, exported, image).stdout)
    by_tag = {item["tag"]: item["prob"] for item in record["tags"]}
    rows = csv_rows(exported)
    assert set(by_tag) | {record["rating"]["tag"]} <= {
        f"rating:{row['name']}" if row["category"] == "9" else row["name"] for row in rows
    }
    assert record["rating"]["tag"].startswith("rating:")  # the 4-way choice, as for --train's
    # The same image padded white and shrunk by area to 448, through Keras' --pred: the
    # export's probabilities agree up to 8-bit rounding (docs/export.md measures it).
    square = tmp_path / "square.png"
    Image.fromarray(load_image(image, 448, "area", pad=True)).save(square)
    keras_record = json.loads(wd_pred(alt_i2v, trained, categorised, square).stdout)
    for item in keras_record["tags"]:
        assert by_tag[item["tag"]] == pytest.approx(item["prob"], abs=0.02), item["tag"]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("header", "selected_tags.csv: its header is not tag_id,name,category,..."),
        ("category", "selected_tags.csv: line 2 has no known category"),
        ("rows", "outputs, selected_tags.csv lists"),
        ("threshold", "selected_tags.csv: line 3 has no threshold in [0, 1]"),
        ("onnx", "model.onnx: onnxruntime cannot load it ("),
    ],
)
def test_a_broken_wd_folder_ends_in_one_line(alt_i2v, trained, exported, tmp_path, breakage,
                                            message):  # fmt: skip
    folder = tmp_path / "broken"
    shutil.copytree(exported, folder)
    tags_file = folder / "selected_tags.csv"
    lines = tags_file.read_text().splitlines()
    if breakage == "header":
        tags_file.write_text("\n".join(["id,tag,kind", *lines[1:]]) + "\n")
    elif breakage == "category":
        tags_file.write_text("\n".join([lines[0], lines[1].replace(",9,", ",7,"), *lines[2:]]))
    elif breakage == "rows":
        tags_file.write_text("\n".join(lines[:-1]) + "\n")
    elif breakage == "threshold":  # a best_threshold column with a probability above 1
        values = ["best_threshold", "0.5", "1.5", *["0.5"] * (len(lines) - 3)]
        rows = zip(lines, values, strict=True)
        tags_file.write_text("".join(f"{line},{value}\n" for line, value in rows))
    else:
        (folder / "model.onnx").write_bytes(b"not an onnx file")
    image = next(post.image for post in iter_posts(trained.data_dir / "imgs"))
    result = wd_pred(alt_i2v, trained, folder, image, expect=3)
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("alt_i2v.py:")]
    assert message in line and "Traceback" not in result.stderr


# --- a WD-layout folder's vectors -------------------------------------------------------------


def vectors_of(alt_i2v, trained, model: Path, images: list[Path], *flags) -> np.ndarray:
    result = alt_i2v("--vec", *images, "--model", model, "--json", "--quiet", "--data-dir",
                     trained.data_dir, *flags)  # fmt: skip
    return np.array([json.loads(line)["vector"] for line in result.stdout.splitlines()])


def test_the_exports_vectors_are_the_keras_models_on_the_same_padded_input(
    alt_i2v, trained, exported, categorised, tmp_path
):
    images = [post.image for post in iter_posts(trained.data_dir / "imgs")][:4]
    squares = []  # each image padded white and shrunk by area to 448, as the export is fed
    for number, image in enumerate(images):
        squares.append(tmp_path / f"square-{number}.png")
        Image.fromarray(load_image(image, 448, "area", pad=True)).save(squares[-1])
    keras_vectors = vectors_of(alt_i2v, trained, categorised, squares)
    export_vectors = vectors_of(alt_i2v, trained, exported, images)
    assert export_vectors.shape == keras_vectors.shape == (len(images), trained.vocab_size)
    np.testing.assert_allclose(np.linalg.norm(export_vectors, axis=1), 1.0, rtol=1e-5)
    # Up to the 8-bit rounding of --pred's 150 resize, which the graph does in float.
    np.testing.assert_allclose(export_vectors, keras_vectors, atol=VECTOR_TOLERANCE)
    own = np.argmax(export_vectors @ keras_vectors.T, axis=1)  # the most similar Keras vector
    assert own.tolist() == list(range(len(images)))


def test_similar_with_the_export_finds_a_posts_own_copies_first(alt_i2v, trained, exported,
                                                                  tmp_path):  # fmt: skip
    data_dir = tmp_path / "data"
    shutil.copytree(trained.data_dir, data_dir, ignore=shutil.ignore_patterns("training"))
    original = find_image(data_dir / "imgs", "3")
    with Image.open(original) as opened:
        picture = opened.convert("RGB")
    half, recompressed = tmp_path / "three-half.png", tmp_path / "three-q60.jpg"
    picture.resize((picture.width // 2, picture.height // 2), Image.Resampling.BICUBIC).save(half)
    picture.save(recompressed, quality=60)
    result = alt_i2v(
        "--index", "--similar", half, recompressed, "--model", exported, "--neighbours", 3,
        "--json", "--data-dir", data_dir,
    )  # fmt: skip
    summary, *lines = result.stdout.splitlines()
    assert summary == (
        f"index: added {trained.post_count}, removed 0, {trained.post_count} posts; model "
        f"{exported.name}, layer logits -> {data_dir / 'index' / 'logits'}"
    )
    for line in lines:
        neighbours = json.loads(line)["neighbours"]
        assert neighbours[0]["post_id"] == "3" and neighbours[0]["path"] == str(original)
        assert neighbours[0]["score"] > neighbours[1]["score"]


def test_the_vector_modes_refuse_a_wd_folder_without_an_embedding_or_another_layer(
    alt_i2v, trained, exported, tmp_path
):
    image = next((trained.data_dir / "imgs").glob("*.png"))
    folder = tmp_path / "no-embedding"
    shutil.copytree(exported, folder)
    graph = onnx.load(folder / "model.onnx")
    del graph.graph.output[1]  # as SmilingWolf ships its taggers: the probabilities alone
    onnx.save(graph, folder / "model.onnx")
    for model, flags, message in (
        (folder, (), f"{folder / 'model.onnx'}: no embedding output after its probabilities"),
        (exported, ("--layer", "dense"), f"{exported}: a WD folder gives one vector, its "
         "embedding output (logits); --layer dense needs the model from --train"),
    ):  # fmt: skip
        result = alt_i2v("--vec", image, "--model", model, *flags, "--data-dir",
                         trained.data_dir, expect=3)  # fmt: skip
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"alt_i2v.py: error: {message}") and "Traceback" not in result.stderr
