"""--pred over collections, end to end on the session's tiny model: batch equals single, every
format and option, thresholds from a hand-written thresholds.json, --skip-unchanged, an
interrupted caption run, the contact sheet."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alti2v.data.posts import iter_posts
from alti2v.data.vocabulary import vocabulary_hash
from alti2v.tag.inputs import InputImage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree(trained, tmp_path_factory) -> Path:
    """A folder tree: images at the top and nested, a broken one, a non-image, a symlink."""
    root = tmp_path_factory.mktemp("tree")
    posts = [post for post in iter_posts(trained.data_dir / "imgs")][:4]
    (root / "nested" / "deeper").mkdir(parents=True)
    targets = [root, root, root / "nested", root / "nested" / "deeper"]
    for post, folder in zip(posts, targets, strict=True):
        shutil.copy(post.image, folder / post.image.name)
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (root / "notes.md").write_text("not an image")
    (root / "nested" / "link.png").symlink_to(root / posts[0].image.name)
    (root / "nested" / "loop").symlink_to("..")  # relative: a loop in any copy
    return root


def images_of(tree: Path) -> list[str]:
    return sorted(str(path.relative_to(tree)) for path in tree.rglob("*") if path.suffix in (
        ".png", ".jpg", ".gif", ".webp", ".bmp"
    ) and "loop" not in path.parts and path.name != "broken.jpg")  # fmt: skip


def copy_tree(tree: Path, destination: Path) -> Path:
    shutil.copytree(tree, destination, symlinks=True)
    return destination


def pred(alt_i2v, trained, *arguments, expect=0):
    return alt_i2v("--pred", *arguments, "--data-dir", trained.data_dir, expect=expect)


def test_a_batch_gives_the_probabilities_of_single_images(trained):
    from alti2v.model.saved import load_model
    from alti2v.tag.predict import predict_images

    loaded = load_model(trained.model_folder)
    images = [
        InputImage(post.image, post.image.parent)
        for post in list(iter_posts(trained.data_dir / "imgs"))[:5]
    ]
    batched = [p.probabilities for p in predict_images(loaded, images, batch_size=4)]
    single = [p.probabilities for p in predict_images(loaded, images, batch_size=1, workers=1)]
    assert len(batched) == 5
    np.testing.assert_allclose(np.stack(batched), np.stack(single), rtol=0, atol=1e-5)


def test_recursive_tree_text_json_csv_and_the_broken_file(trained, alt_i2v, tree):
    text = pred(alt_i2v, trained, tree, "--recursive", "--top-k", 2, expect=1)
    tagged = sorted(
        {str(Path(line.split(" tag=")[0]).relative_to(tree)) for line in text.stdout.splitlines()}
    )
    assert tagged == images_of(tree)
    assert f"{tree / 'broken.jpg'}: cannot decode image" in text.stderr
    assert "notes.md" not in text.stderr + text.stdout
    assert "pred: model" in text.stderr and "keras backend" in text.stderr  # the start-up lines

    quiet_json = pred(alt_i2v, trained, tree, "--format", "json", "--quiet", expect=1)
    assert "backend" not in quiet_json.stderr
    records = [json.loads(line) for line in quiet_json.stdout.splitlines()]
    assert [Path(record["image"]).name for record in records][-1] == "broken.jpg"
    assert records[-1]["error"].startswith(str(tree / "broken.jpg"))

    table = pred(alt_i2v, trained, tree / "nested", "--format", "csv", "--top-k", 3, "--quiet")
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    nested = [tree / "nested" / name for name in sorted(os.listdir(tree / "nested"))]
    assert [row["image"] for row in rows] == [str(path) for path in nested if path.is_file()
                                              for _ in range(3)]  # fmt: skip
    assert all(0 <= float(row["prob"]) <= 1 for row in rows)


def test_tag_options_reach_every_format(trained, alt_i2v, tree, tmp_path):
    image = str(sorted(tree.glob("*.png"))[0])
    every = json.loads(pred(alt_i2v, trained, image, "--json", "--top-k", 0, "--quiet").stdout)
    ranked = [item["tag"] for item in every["tags"]]
    general = [tag for tag in ranked if not tag.startswith("rating:")]
    (tmp_path / "exclude.txt").write_text(f"# unwanted\n{general[0].replace('_', ' ')}\n")
    (tmp_path / "replace.txt").write_text(f"{general[1]}=renamed_tag\n")
    result = pred(
        alt_i2v, trained, image, "--json", "--quiet", "--top-k", 3, "--rating", "last",
        "--exclude-file", tmp_path / "exclude.txt", "--replace-file", tmp_path / "replace.txt",
        "--always-first", "trigger_word", "--spaces", "--sort", "alpha",
    )  # fmt: skip
    tags = [item["tag"] for item in json.loads(result.stdout)["tags"]]
    model_tags = sorted([general[2], general[3], "renamed_tag"], key=str.lower)
    expected = [
        "trigger word",
        *(tag.replace("_", " ") for tag in model_tags),
        every["rating"]["tag"],
    ]
    assert tags == expected
    only = pred(alt_i2v, trained, image, "--include-only", general[4], "--quiet")
    assert (
        only.stdout
        == f"{image} tag={general[4]} prob={every['tags'][ranked.index(general[4])]['prob']:.6f}\n"
    )


def test_threshold_rules_from_a_hand_written_file_and_without_one(trained, alt_i2v, tree, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(trained.model_folder, model)
    image = str(sorted(tree.glob("*.png"))[0])
    missing = pred(alt_i2v, trained, image, "--model", model, "--threshold-rule", "f1", expect=3)
    assert "no thresholds.json; run --eval" in missing.stderr
    assert missing.stdout == ""
    every = json.loads(pred(alt_i2v, trained, image, "--json", "--top-k", 0, "--quiet").stdout)
    probability = {item["tag"]: item["prob"] for item in every["tags"]}
    tags = (model / "vocab.txt").read_text().splitlines()
    # Each tag's threshold just under or just over its probability: half the tags pass.
    fitted = {
        tag: probability[tag] + (-1e-3 if index % 2 else 1e-3) for index, tag in enumerate(tags)
    }
    (model / "thresholds.json").write_text(
        json.dumps({"vocab_hash": vocabulary_hash(tags), "rules": {"f1": fitted}})
    )
    result = pred(alt_i2v, trained, image, "--model", model, "--threshold-rule", "f1",
                  "--json", "--top-k", 0, "--quiet")  # fmt: skip
    kept = {item["tag"] for item in json.loads(result.stdout)["tags"]}
    assert kept == {tag for index, tag in enumerate(tags) if index % 2}
    # Categories from model.json: --general-threshold overrides the rule for general tags.
    info = json.loads((model / "model.json").read_text())
    info["categories"] = {tag: "general" for tag in tags if not tag.startswith("rating:")}
    (model / "model.json").write_text(json.dumps(info))
    result = pred(alt_i2v, trained, image, "--model", model, "--threshold-rule", "f1",
                  "--general-threshold", 0, "--json", "--top-k", 0, "--quiet")  # fmt: skip
    kept = {item["tag"] for item in json.loads(result.stdout)["tags"]}
    assert kept == {
        tag for index, tag in enumerate(tags) if index % 2 or not tag.startswith("rating:")
    }
    mcut = pred(alt_i2v, trained, image, "--threshold-rule", "mcut", "--quiet")
    assert 0 < len(mcut.stdout.splitlines()) < len(tags)


def test_captions_sidecars_and_skip_unchanged(trained, alt_i2v, tree, tmp_path):
    folder = copy_tree(tree, tmp_path / "tree")
    out = tmp_path / "out"
    first = pred(alt_i2v, trained, folder, "--recursive", "--format", "caption", "--top-k", 3,
                 "--output-dir", out, "--skip-unchanged", "--quiet", expect=1)  # fmt: skip
    captions = sorted(str(path.relative_to(out)) for path in out.rglob("*.txt"))
    assert captions == sorted(str(Path(name).with_suffix(".txt")) for name in images_of(tree))
    assert all(line.startswith("written ") for line in first.stdout.splitlines())
    for caption in out.rglob("*.txt"):
        assert len(caption.read_text().strip().split(", ")) == 3
    assert not list(folder.rglob("*.txt"))  # nothing written beside the inputs

    changed = sorted(folder.glob("*.png"))[0]
    Image.open(changed).convert("RGB").rotate(90).save(changed)
    again = pred(alt_i2v, trained, folder, "--recursive", "--format", "caption", "--top-k", 3,
                 "--output-dir", out, "--skip-unchanged", "--quiet", expect=1)  # fmt: skip
    redone = [line for line in again.stdout.splitlines() if not line.startswith("unchanged ")]
    assert redone == [f"updated {out / changed.with_suffix('.txt').name}"]
    assert len(again.stdout.splitlines()) == len(images_of(tree))

    nested = sorted(path for path in (folder / "nested").iterdir() if path.is_file())
    sidecars = pred(alt_i2v, trained, folder / "nested", "--format", "sidecar", "--quiet")
    record = json.loads((folder / "nested" / "link.png.json").read_text())
    assert sidecars.stdout.splitlines() == [f"written {path}.json" for path in nested]
    assert record["provenance"]["model"] == trained.model_folder.name
    assert record["provenance"]["threshold_rule"]["rule"] == "constant"
    assert len(record["tags"]) == trained.vocab_size
    assert record["rating"]["tag"].startswith("rating:")


def test_an_interrupted_caption_run_leaves_no_half_written_caption(
    trained, start_alt_i2v, alt_i2v, tmp_path
):
    folder = tmp_path / "many"
    folder.mkdir()
    source = sorted(
        tree_path
        for tree_path in (trained.data_dir / "imgs").iterdir()
        if tree_path.suffix != ".txt" and tree_path.suffix != ".json"
    )
    for index in range(40):
        shutil.copy(
            source[index % len(source)], folder / f"{index:03d}{source[index % len(source)].suffix}"
        )
    process = start_alt_i2v("--pred", folder, "--format", "caption", "--batch-size", 1,
                            "--data-dir", trained.data_dir, "--quiet")  # fmt: skip
    first_line = process.stdout.readline()
    assert first_line.startswith(b"written ")
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    written = sorted(folder.glob("*.txt"))
    assert 0 < len(written) < 40
    assert not [path for path in folder.iterdir() if path.name.startswith(".")]
    for caption in written:
        assert caption.read_text().endswith("\n")
    result = pred(alt_i2v, trained, folder, "--format", "caption", "--quiet")
    statuses = [line.split()[0] for line in result.stdout.splitlines()]
    assert statuses.count("kept") == len(written)
    assert statuses.count("written") == 40 - len(written)


def test_sheet_is_a_png_of_the_expected_size(trained, alt_i2v, tree, tmp_path):
    from alti2v import defaults
    from alti2v.tag import sheet

    out = tmp_path / "sheet.png"
    pred(alt_i2v, trained, tree, "--recursive", "--sheet", out, "--quiet", expect=1)
    count = len(images_of(tree))
    columns = defaults.SHEET_COLUMNS
    rows = -(-count // columns)
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width == columns * (defaults.SHEET_THUMB + 2 * sheet.PADDING) + sheet.PADDING
    # each cell: the top tags and, for images with true tags beside them, the "missed" line
    lines = defaults.SHEET_LINES + 1
    cell = defaults.SHEET_THUMB + sheet.TITLE_HEIGHT + lines * sheet.LINE_HEIGHT + 2 * sheet.PADDING
    assert height in (
        rows * cell + sheet.PADDING,
        rows * (cell - sheet.LINE_HEIGHT) + sheet.PADDING,
    )


def test_usage_errors(trained, alt_i2v):
    result = pred(alt_i2v, trained, "x.png", "--skip-unchanged", expect=2)
    assert "--skip-unchanged needs --format caption or sidecar" in result.stderr
    result = pred(alt_i2v, trained, "x.png", "--replace", "nothing", expect=2)
    assert "is not OLD=NEW" in result.stderr
    result = pred(alt_i2v, trained, "x.png", "--caption-ext", "txt", expect=2)
    assert "--caption-ext must be a file extension such as .txt" in result.stderr
    result = pred(alt_i2v, trained, "x.png", "--pred-workers", -1, expect=2)
    assert "must be 0 or more" in result.stderr
