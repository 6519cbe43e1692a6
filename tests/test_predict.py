"""Unit tests of --pred's pieces that need no model: inputs, ranking and the two formats."""

from __future__ import annotations

import json

import numpy as np

from alti2v.predict import Prediction, expand_inputs, format_json, format_text, top_tags


def test_folders_expand_to_their_images_sorted_and_files_stay_as_given(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ("b.PNG", "a.jpg", "notes.txt", "c.webp", "meta.json"):
        (folder / name).write_bytes(b"")
    (folder / "nested.jpg").mkdir()  # a folder named like an image is not an image
    given = str(tmp_path / "missing.gif")
    assert expand_inputs([str(folder), given]) == [
        str(folder / "a.jpg"), str(folder / "b.PNG"), str(folder / "c.webp"), given,
    ]  # fmt: skip


def test_top_tags_ranks_by_probability_then_cuts_by_k_and_threshold():
    probabilities = np.array([0.2, 0.9, 0.5, 0.9, 0.05], dtype=np.float32)
    tags = ["a", "b", "c", "d", "e"]
    assert [tag for tag, _ in top_tags(probabilities, tags, 0, 0.0)] == ["b", "d", "c", "a", "e"]
    assert [tag for tag, _ in top_tags(probabilities, tags, 2, 0.0)] == ["b", "d"]
    assert [tag for tag, _ in top_tags(probabilities, tags, 0, 0.3)] == ["b", "d", "c"]


def test_text_and_json_formats():
    tagged = Prediction("x/1.png", tags=[("1girl", 0.98765432), ("solo", 0.5)])
    assert format_text(tagged).splitlines() == [
        "x/1.png tag=1girl prob=0.987654",
        "x/1.png tag=solo prob=0.500000",
    ]
    assert json.loads(format_json(tagged)) == {
        "image": "x/1.png",
        "tags": [{"tag": "1girl", "prob": 0.987654}, {"tag": "solo", "prob": 0.5}],
    }
    failed = Prediction("bad.jpg", error="bad.jpg: cannot decode image")
    assert json.loads(format_json(failed)) == {
        "image": "bad.jpg",
        "error": "bad.jpg: cannot decode image",
    }
